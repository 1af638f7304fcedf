import type { Command } from 'commander';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import type { CliIo } from './io.js';
import { parseInteger } from './numbers.js';
import { formatTable } from './table.js';

interface QuarantineFlags extends ConnectionFlags {
  device?: string;
  limit: string;
  json?: boolean;
}

export function registerQuarantine(program: Command, io: CliIo): void {
  withConnection(
    program
      .command('quarantine')
      .description(
        'device messages the controller did not store, and why (too large, out of range, refused by the database); newest first',
      )
      .option('--device <id>', 'only this device')
      .option('--limit <n>', 'at most this many', '20')
      .option('--json', 'print them as JSON (with the first 4 KiB of each payload)'),
  )
    .addHelpText('after', '\nExample:\n  podfleet quarantine --device pi-17')
    .action(async (flags: QuarantineFlags) => {
      const limit = parseInteger('--limit', flags.limit, 1);
      const api = await clientFor(flags);
      const entries = await api
        .quarantine({ device: flags.device }, limit)
        .catch(naming({ 'querystring.device': '--device' }));
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        formatTable(
          ['RECEIVED', 'DEVICE', 'TOPIC', 'BYTES', 'REASON'],
          entries.map((entry) => [
            entry.receivedAt,
            entry.device ?? '-',
            entry.topic,
            String(entry.payloadBytes),
            entry.reason,
          ]),
        ),
      );
    });
}
