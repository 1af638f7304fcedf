import { setTimeout as sleep } from 'node:timers/promises';
import type { RolloutStatus } from '../rollouts/status.js';
import { FINISHED } from '../rollouts/status.js';
import { ApiError, type ApiClient } from './api-client.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { renderRollout, statusLine } from './rollout-view.js';
import { visible } from './terminal-text.js';

/** How long `rollout watch` keeps trying to reach a controller that went away (a restart). */
export const RECONNECT_FOR_MS = 120_000;
/** Waits between attempts to reconnect: quick at first (a restart), then every two seconds. */
const RETRY_MS = [250, 500, 1000, 2000];

/**
 * Follows the server-sent events of a rollout; resolves when it ends, with its exit code. A stream
 * that drops (the controller stopped or restarted) is opened again, and the watch says so on
 * stderr, for up to RECONNECT_FOR_MS.
 */
export async function watch(api: ApiClient, id: string, io: CliIo, json: boolean): Promise<void> {
  const show = viewer(io, json);
  const notice = (line: string) =>
    io.stderr.write(`podfleet: ${visible(`rollout ${id}: ${line}`)}\n`);
  let final: RolloutStatus | undefined;
  let lostAt: number | undefined;
  for (let attempt = 0; ; attempt++) {
    let reason = 'the controller ended the stream';
    try {
      for await (const event of api.stream(`/v1/rollouts/${encodeURIComponent(id)}/stream`)) {
        if (lostAt !== undefined) notice('reconnected; watching again');
        lostAt = undefined;
        attempt = 0;
        final = show(event) ?? final;
      }
    } catch (error) {
      if (!transient(error)) throw error;
      reason = (error as Error).message;
    }
    if (final && FINISHED.includes(final.state)) return ended(final, io, json);
    if (lostAt === undefined) {
      lostAt = Date.now();
      notice(`stream lost (${reason}); reconnecting`);
    } else if (Date.now() - lostAt > RECONNECT_FOR_MS) {
      throw new CliError(
        [
          `rollout ${id}: no stream for ${RECONNECT_FOR_MS / 1000} s (${reason})${final ? `; last seen ${final.state}` : ''}`,
        ],
        EXIT.failed,
      );
    }
    await sleep(RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)]);
  }
}

/** The last view of a finished rollout, and its exit code: 0 only when it succeeded. */
function ended(final: RolloutStatus, io: CliIo, json: boolean): void {
  if (!json && io.redraw === undefined) io.stdout.write(renderRollout(final));
  if (final.state !== 'succeeded')
    throw new CliError(
      [`rollout ${final.id} ${final.state}${final.reason ? `: ${final.reason}` : ''}`],
      EXIT.failed,
    );
}

/**
 * Shows one event the way the output wants it and returns the status it carries: JSON, one status
 * a line; a terminal, redrawn; a pipe, a line per change of state, counts or holds, and the
 * engine's happenings between them.
 */
function viewer(io: CliIo, json: boolean) {
  let lastLine = '';
  return (event: { event: string; data: string }): RolloutStatus | undefined => {
    if (event.event === 'happening') {
      if (!json && io.redraw === undefined)
        io.stdout.write(`${visible((JSON.parse(event.data) as { line: string }).line)}\n`);
      return undefined;
    }
    if (event.event !== 'status') return undefined;
    const status = JSON.parse(event.data) as RolloutStatus;
    if (json) io.stdout.write(`${event.data}\n`);
    else if (io.redraw) io.redraw(renderRollout(status));
    else {
      const line = statusLine(status);
      if (line !== lastLine) io.stdout.write(`${line}\n`);
      lastLine = line;
    }
    return status;
  };
}

/**
 * A dropped connection, a controller not (yet) listening, or one that answers 5xx while it stops
 * or starts: worth another try. Refusals (401, 403, 404) are not.
 */
function transient(error: unknown): boolean {
  if (error instanceof ApiError) return error.status >= 500;
  if (error instanceof CliError) return error.exitCode === EXIT.failed;
  return error instanceof TypeError; // fetch's body ended mid-stream ('terminated')
}
