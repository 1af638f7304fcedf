import { Option, type Command } from 'commander';
import { commandGroup } from './command-group.js';
import { ROLES, type Role } from '../auth/roles.js';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import type { CliIo } from './io.js';
import { formatTable } from './table.js';

interface CreateFlags extends ConnectionFlags {
  role: Role;
  json?: boolean;
}

export function registerTokens(program: Command, io: CliIo): void {
  const tokens = commandGroup(program, 'tokens', 'API tokens (admin)', io);

  withConnection(
    tokens
      .command('create')
      .description('issue an API token; it is printed once and only its hash is kept')
      .argument('<name>', 'who or what uses it: the actor in the audit log')
      .addOption(
        new Option('--role <role>', 'viewer reads, operator changes the fleet, admin also tokens')
          .choices(ROLES)
          .makeOptionMandatory(),
      )
      .option('--json', 'print the token and its id as JSON'),
  )
    .addHelpText('after', '\nExample:\n  podfleet tokens create ci --role operator')
    .action(async (name: string, flags: CreateFlags) => {
      const api = await clientFor(flags);
      const issued = await api.createToken(name, flags.role).catch(naming({ 'body.name': 'NAME' }));
      if (flags.json) {
        const { id, role, token } = issued;
        io.stdout.write(`${JSON.stringify({ id, name: issued.name, role, token }, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        `created token ${issued.name} (role ${issued.role}, id ${issued.id}); it is shown only now:\n${issued.token}\n`,
      );
    });

  withConnection(
    tokens
      .command('ls')
      .description('list live API tokens (names and roles, never the tokens)')
      .option('--json', 'print the tokens as JSON'),
  ).action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const list = await (await clientFor(flags)).tokens();
    if (flags.json) {
      io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return;
    }
    io.stdout.write(
      formatTable(
        ['ID', 'NAME', 'ROLE', 'CREATED'],
        list.map((token) => [token.id, token.name, token.role, token.createdAt]),
      ),
    );
  });

  withConnection(
    tokens
      .command('revoke')
      .description('revoke an API token: it is refused from now on')
      .argument('<id>', 'the token id (podfleet tokens ls)'),
  ).action(async (id: string, flags: ConnectionFlags) => {
    await (await clientFor(flags)).revokeToken(id).catch(naming({ 'params.id': 'ID' }));
    io.stdout.write(`revoked token ${id}\n`);
  });
}
