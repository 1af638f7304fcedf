import type { Command } from 'commander';
import type { GroupView } from '../groups/schemas.js';
import {
  clientFor,
  naming,
  withConnection,
  type ConnectionFlags,
  type Json,
} from './api-client.js';
import { CliError, type CliIo } from './io.js';
import { parseInteger } from './numbers.js';

interface EditFlags extends ConnectionFlags {
  /** false from --no-selector: members only. */
  selector?: string | false;
  priority?: string;
  json?: boolean;
}

const groupPath = (name: string) => `/v1/groups/${encodeURIComponent(name)}`;

/** `groups edit` and `groups rm` over PATCH and DELETE /v1/groups/:name. */
export function registerGroupVerbs(groups: Command, io: CliIo): void {
  withConnection(
    groups
      .command('edit')
      .argument('<name>', 'group name')
      .description("change a group's selector or priority")
      .option('--selector <selector>', "the new label selector, e.g. 'site=berlin'")
      .option('--no-selector', 'drop the selector: the group is its listed members only')
      .option('--priority <n>', 'the new priority (higher wins)')
      .option('--json', 'print the group as JSON'),
  )
    .addHelpText(
      'after',
      "\nExample:\n  podfleet groups edit berlin --selector 'site in (berlin,potsdam)' --priority 20",
    )
    .action(async (name: string, flags: EditFlags) => {
      if (flags.selector === undefined && flags.priority === undefined) {
        throw new CliError(['give --selector, --no-selector or --priority']);
      }
      const body = {
        ...(flags.selector === undefined ? {} : { selector: flags.selector || null }),
        ...(flags.priority === undefined
          ? {}
          : { priority: parseInteger('--priority', flags.priority) }),
      };
      const api = await clientFor(flags);
      const group = await api.request<Json<GroupView>>('PATCH', groupPath(name), body).catch(
        naming({
          'params.name': 'NAME',
          'body.selector': '--selector',
          'body.priority': '--priority',
        }),
      );
      if (flags.json) return void io.stdout.write(`${JSON.stringify(group, null, 2)}\n`);
      io.stdout.write(
        `group ${group.name}: selector ${group.selector ?? 'none'}, priority ${group.priority}\n`,
      );
    });

  withConnection(
    groups
      .command('rm')
      .argument('<name>', 'group name')
      .description('delete a group; refused while it assigns or pins services, unless --force')
      .option('--force', 'delete it anyway: its services stop (or unpin) on its devices'),
  ).action(async (name: string, flags: ConnectionFlags & { force?: boolean }) => {
    const api = await clientFor(flags);
    await api
      .request('DELETE', groupPath(name), undefined, flags.force ? { force: true } : {})
      .catch(naming({ 'params.name': 'NAME' }));
    io.stdout.write(`deleted group ${name}\n`);
  });
}
