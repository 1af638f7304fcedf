import type { Command } from 'commander';
import { commandGroup } from './command-group.js';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import { registerGroupVerbs } from './group-verbs.js';
import { parseInteger } from './numbers.js';
import type { CliIo } from './io.js';
import { formatTable } from './table.js';

interface CreateFlags extends ConnectionFlags {
  selector?: string;
  priority?: string;
  members?: string;
  json?: boolean;
}

const CREATE_FIELDS = {
  'body.name': 'NAME',
  'body.selector': '--selector',
  'body.priority': '--priority',
  'body.members': '--members',
};

export function registerGroups(program: Command, io: CliIo): void {
  const groups = commandGroup(program, 'groups', 'create and list groups of devices', io);

  withConnection(
    groups
      .command('create')
      .description('create a group: devices matching a label selector and/or listed members')
      .argument('<name>', 'group name: [a-z0-9][a-z0-9._-]*')
      .option('--selector <selector>', "label selector, e.g. 'site=berlin,tier in (edge,gw)'")
      .option('--priority <n>', 'higher wins when groups assign or pin the same service', '0')
      .option('--members <ids>', 'device ids, comma-separated')
      .option('--json', 'print the group as JSON'),
  )
    .addHelpText(
      'after',
      "\nExamples:\n  podfleet groups create berlin --selector 'site=berlin' --priority 10\n  podfleet groups create lab --members pi-1,pi-2",
    )
    .action(async (name: string, flags: CreateFlags) => {
      const priority = parseInteger('--priority', flags.priority ?? '0');
      const members = flags.members
        ?.split(',')
        .map((id) => id.trim())
        .filter(Boolean);
      const api = await clientFor(flags);
      const group = await api
        .createGroup({
          name,
          priority,
          ...(flags.selector === undefined ? {} : { selector: flags.selector }),
          ...(members === undefined ? {} : { members }),
        })
        .catch(naming(CREATE_FIELDS));
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(group, null, 2)}\n`);
        return;
      }
      const selector = group.selector ?? 'none';
      const count = group.members.length;
      io.stdout.write(
        `created group ${group.name} (selector ${selector}, priority ${group.priority}, ${count} listed member${count === 1 ? '' : 's'})\n`,
      );
    });

  withConnection(
    groups
      .command('ls')
      .description('list groups with their selector, members and services')
      .option('--json', 'print the groups as JSON'),
  ).action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const list = await (await clientFor(flags)).groups();
    if (flags.json) {
      io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return;
    }
    io.stdout.write(
      formatTable(
        ['NAME', 'PRIORITY', 'SELECTOR', 'MEMBERS', 'SERVICES', 'PINS'],
        list.map((group) => [
          group.name,
          String(group.priority),
          group.selector ?? '-',
          String(group.members.length),
          group.services.map((s) => `${s.service}@${s.revision}`).join(',') || '-',
          group.pins.map((pin) => pin.service).join(',') || '-',
        ]),
      ),
    );
  });

  registerGroupVerbs(groups, io);
}
