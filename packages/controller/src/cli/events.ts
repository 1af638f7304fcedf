import type { Command } from 'commander';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import type { CliIo } from './io.js';
import { parseInteger } from './numbers.js';
import { sinceTime } from './since.js';
import { formatTable } from './table.js';

interface EventFlags extends ConnectionFlags {
  device?: string;
  type?: string;
  since?: string;
  limit: string;
  json?: boolean;
}

export function registerEvents(program: Command, io: CliIo): void {
  withConnection(
    program
      .command('events')
      .description(
        'what devices reported: apply, auto-update, rollback, drift, error; newest received first (a device clock that disagrees is shown beside it)',
      )
      .option('--device <id>', 'only this device')
      .option('--type <type>', 'only this type (apply, auto-update, rollback, drift, error)')
      .option(
        '--since <time>',
        'only events received at or after this time: how long ago (10m, 2h, 3d) or ISO',
      )
      .option('--limit <n>', 'at most this many', '20')
      .option('--json', 'print the events as JSON'),
  )
    .addHelpText('after', '\nExample:\n  podfleet events --device pi-17 --type rollback --limit 5')
    .action(async (flags: EventFlags) => {
      const limit = parseInteger('--limit', flags.limit, 1);
      const since = await sinceTime('--since', flags.since);
      const api = await clientFor(flags);
      const events = await api
        .events({ device: flags.device, type: flags.type, since }, limit)
        .catch(
          naming({
            'querystring.device': '--device',
            'querystring.type': '--type',
            'querystring.since': '--since',
          }),
        );
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(events, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        formatTable(
          ['RECEIVED', 'DEVICE', 'TYPE', 'WHAT'],
          events.map((event) => [
            event.receivedAt,
            event.device,
            event.type,
            summarize(event.payload) + deviceClock(event.at, event.receivedAt),
          ]),
        ),
      );
    });
}

/**
 * The device's own time of the event when it is a minute or more from when the controller
 * received it: a clock that is off (or an event that waited offline) is shown, not hidden.
 */
function deviceClock(at: string, receivedAt: string): string {
  return Math.abs(Date.parse(at) - Date.parse(receivedAt)) >= 60_000
    ? ` (device clock: ${at})`
    : '';
}

/** One line per event, from the fields each DeviceEvent type has. */
type AutoUpdateRow = { unit?: unknown; updated?: unknown; reason?: unknown };

function summarize(payload: Record<string, unknown>): string {
  const text = (key: string) => (payload[key] === undefined ? '' : String(payload[key]));
  switch (payload.type) {
    case 'apply':
      return `generation ${text('generation')} ${text('result')}${payload.reason ? `: ${text('reason')}` : ''}`;
    case 'rollback':
      return `${text('service')} ${text('fromImage')} → ${text('toImage')} (${text('trigger')}): ${text('reason')}`;
    case 'drift':
      return `${text('service')} expected ${text('expected')}, found ${text('observed')} (${text('action')})`;
    case 'auto-update': {
      const rows = Array.isArray(payload.results) ? (payload.results as AutoUpdateRow[]) : [];
      const acted = rows
        .filter((row) => row.updated !== 'false')
        .map((row) => `${row.unit} ${row.updated}${row.reason ? ` (${row.reason})` : ''}`);
      const checked = `${rows.length} unit${rows.length === 1 ? '' : 's'} checked`;
      return `${payload.dryRun ? 'dry run, ' : ''}${[checked, ...acted].join('; ')}`;
    }
    case 'error':
      return `${payload.service ? `${text('service')}: ` : ''}${text('message')}`;
    default:
      return '';
  }
}
