import type { RolloutStatus } from '../rollouts/status.js';
import { FINISHED } from '../rollouts/status.js';
import type { ApiClient } from './api-client.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { renderRollout } from './rollout-view.js';
import { visible } from './terminal-text.js';

/** Follows the server-sent events of a rollout; resolves when it ends, with its exit code. */
export async function watch(api: ApiClient, id: string, io: CliIo, json: boolean): Promise<void> {
  const tty = io.redraw !== undefined;
  let final: RolloutStatus | undefined;
  for await (const event of api.stream(`/v1/rollouts/${encodeURIComponent(id)}/stream`)) {
    if (event.event === 'status') {
      const status = JSON.parse(event.data) as RolloutStatus;
      final = status;
      if (json) io.stdout.write(`${event.data}\n`);
      else io.redraw?.(renderRollout(status));
    } else if (event.event === 'happening' && !json && !tty) {
      io.stdout.write(`${visible((JSON.parse(event.data) as { line: string }).line)}\n`);
    }
  }
  if (!final)
    throw new CliError([`rollout ${id}: the stream ended before any status`], EXIT.failed);
  if (!json && !tty) io.stdout.write(renderRollout(final));
  if (!FINISHED.includes(final.state))
    throw new CliError([`rollout ${id}: stream closed while ${final.state}`], EXIT.failed);
  if (final.state !== 'succeeded')
    throw new CliError(
      [`rollout ${id} ${final.state}${final.reason ? `: ${final.reason}` : ''}`],
      EXIT.failed,
    );
}
