import type { Command } from 'commander';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import type { CliIo } from './io.js';
import { parseInteger } from './numbers.js';
import { sinceTime } from './since.js';
import { formatTable } from './table.js';

interface AuditFlags extends ConnectionFlags {
  actor?: string;
  action?: string;
  target?: string;
  since?: string;
  limit: string;
  json?: boolean;
}

/** `audit`: the changes operators made through the API, newest first, over /v1/audit. */
export function registerAudit(program: Command, io: CliIo): void {
  withConnection(
    program
      .command('audit')
      .description('changes made through the API and who made them, newest first (admin token)')
      .option('--actor <name>', 'only changes by this token (its name, e.g. admin or ci)')
      .option('--action <action>', 'only this action, e.g. device.label or rollout.start')
      .option('--target <target>', 'only this target, e.g. device/pi-17 or group/berlin')
      .option(
        '--since <time>',
        'only changes at or after this time: how long ago (10m, 2h, 3d) or ISO',
      )
      .option('--limit <n>', 'at most this many', '20')
      .option('--json', 'print the entries as JSON'),
  )
    .addHelpText('after', '\nExample:\n  podfleet audit --target group/berlin --limit 5')
    .action(async (flags: AuditFlags) => {
      const limit = parseInteger('--limit', flags.limit, 1);
      const since = await sinceTime('--since', flags.since);
      const api = await clientFor(flags);
      const { actor, action, target } = flags;
      const entries = await api.audit({ actor, action, target, since }, limit).catch(
        naming({
          'querystring.actor': '--actor',
          'querystring.action': '--action',
          'querystring.target': '--target',
          'querystring.since': '--since',
        }),
      );
      if (flags.json) return void io.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
      io.stdout.write(
        formatTable(
          ['AT', 'ACTOR', 'ACTION', 'TARGET', 'DETAILS'],
          entries.map((entry) => [
            entry.at,
            entry.actor,
            entry.action,
            entry.target,
            Object.keys(entry.details).length ? JSON.stringify(entry.details) : '-',
          ]),
        ),
      );
    });
}
