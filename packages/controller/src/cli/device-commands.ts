import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { CommandResult } from '@podfleet/shared';
import { clientFor, withConnection, type ConnectionFlags } from './api-client.js';
import type { CliIo } from './io.js';
import { formatTable } from './table.js';
import { visible } from './terminal-text.js';

type Flags = ConnectionFlags & { json?: boolean };

function lineCount(text: string): number {
  const lines = Number(text);
  if (!/^\d+$/.test(text) || lines < 1 || lines > 1000)
    throw new InvalidArgumentError('must be 1 to 1000');
  return lines;
}

/** `logs`, `autoupdate` and `restart`: commands a device runs now, answered over MQTT. */
export function registerDeviceCommands(program: Command, io: CliIo): void {
  const ask = async (flags: Flags, device: string, body: Record<string, unknown>) => {
    const api = await clientFor(flags);
    const answer = await api.request<{ device: string; result: CommandResult }>(
      'POST',
      `/v1/devices/${encodeURIComponent(device)}/commands`,
      body,
    );
    return answer.result;
  };

  withConnection(program.command('logs').argument('<device>').argument('<service>'))
    .description("a service's recent log lines on a device (journald, through its agent)")
    .option('-n, --lines <n>', 'how many lines (1-1000)', lineCount, 100)
    .option('--json', 'as JSON')
    .action(async (device: string, service: string, flags: Flags & { lines: number }) => {
      const result = await ask(flags, device, { type: 'logs', service, lines: flags.lines });
      if (flags.json) return void io.stdout.write(`${JSON.stringify(result)}\n`);
      if (result.type !== 'logs') return;
      if (result.truncated) io.stdout.write('(older lines left out)\n');
      // Journal lines as the device sent them, one per line: tabs kept, other controls escaped.
      for (const line of result.lines) io.stdout.write(`${visible(line, 'tabs')}\n`);
    });

  withConnection(program.command('autoupdate').argument('<device>'))
    .description(
      'run podman auto-update on a device now, with the agent’s health gate and rollback',
    )
    .option('--dry-run', 'only report which containers would be updated')
    .option(
      '--retry',
      'first forget the images the device rolled back from, so that they may be tried again',
    )
    .option('--json', 'as JSON')
    .action(async (device: string, flags: Flags & { dryRun?: boolean; retry?: boolean }) => {
      const result = await ask(flags, device, {
        type: 'auto-update',
        dryRun: Boolean(flags.dryRun),
        ...(flags.retry ? { retry: true } : {}),
      });
      if (flags.json) return void io.stdout.write(`${JSON.stringify(result)}\n`);
      if (result.type !== 'auto-update') return;
      io.stdout.write(
        formatTable(
          ['UNIT', 'CONTAINER', 'IMAGE', 'POLICY', 'UPDATED'],
          result.results.map((r) => [
            r.unit,
            r.container,
            r.image,
            r.policy,
            r.reason ? `${r.updated}: ${r.reason}` : r.updated,
          ]),
        ),
      );
      if (result.reason) io.stdout.write(`${visible(result.reason)}\n`);
    });

  withConnection(program.command('restart').argument('<device>').argument('<service>'))
    .description('restart a service on a device and wait for it to be healthy again')
    .option('--json', 'as JSON')
    .action(async (device: string, service: string, flags: Flags) => {
      const result = await ask(flags, device, { type: 'restart', service });
      if (flags.json) return void io.stdout.write(`${JSON.stringify(result)}\n`);
      if (result.type !== 'restart') return;
      io.stdout.write(
        `${visible(`${service} on ${device}: ${result.ready ? 'restarted, ready' : `restarted, not ready${result.reason ? `: ${result.reason}` : ''}`}`)}\n`,
      );
    });
}
