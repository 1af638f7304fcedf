import type { Command } from 'commander';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import { CliError, type CliIo } from './io.js';
import { parseInteger } from './numbers.js';

interface AssignFlags extends ConnectionFlags {
  revision?: string;
  rm?: boolean;
  json?: boolean;
}

export function registerAssign(program: Command, io: CliIo): void {
  withConnection(
    program
      .command('assign')
      .description('run a revision of a service on the devices of a group')
      .argument('<group>', 'group name')
      .argument('<service>', 'service name')
      .option('--revision <n>', 'the revision to run (default: the latest)')
      .option('--rm', 'stop running the service in the group instead')
      .option('--json', 'print the assignment as JSON'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  podfleet assign edge web\n  podfleet assign edge web --revision 3\n  podfleet assign --rm edge web',
    )
    .action(async (group: string, service: string, flags: AssignFlags) => {
      // Removing an assignment takes no revision: one given would be silently ignored.
      if (flags.rm && flags.revision !== undefined)
        throw new CliError(['--revision: not with --rm (removing runs no revision)']);
      const revision =
        flags.revision === undefined ? undefined : parseInteger('--revision', flags.revision, 1);
      const api = await clientFor(flags);
      if (flags.rm) {
        await api.unassign(group, service);
        io.stdout.write(`group ${group} no longer runs ${service}\n`);
        return;
      }
      const assignment = await api
        .assign(group, service, revision)
        .catch(naming({ 'params.name': 'GROUP', 'params.service': 'SERVICE' }));
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(assignment, null, 2)}\n`);
        return;
      }
      io.stdout.write(`group ${group} runs ${service} revision ${assignment.revision}\n`);
    });
}
