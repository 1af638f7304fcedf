import type { Command } from 'commander';
import { commandGroup } from './command-group.js';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import { CliError, type CliIo } from './io.js';
import { formatTable } from './table.js';

interface ListFlags extends ConnectionFlags {
  service?: string;
  group?: string;
  device?: string;
  json?: boolean;
}

/** `pins ls` and `pins rm` over /v1/pins (`pin` sets one). */
export function registerPins(program: Command, io: CliIo): void {
  const pins = commandGroup(program, 'pins', 'list and remove pins (podfleet pin sets one)', io);

  withConnection(
    pins
      .command('ls')
      .description('list pins, by service and group or device')
      .option('--service <name>', 'only pins of this service')
      .option('--group <name>', "only this group's pins")
      .option('--device <id>', "only this device's pins")
      .option('--json', 'print the pins as JSON'),
  ).action(async (flags: ListFlags) => {
    if (flags.group !== undefined && flags.device !== undefined) {
      throw new CliError(['--group and --device: give one or neither']);
    }
    const api = await clientFor(flags);
    const list = await api
      .pins({ service: flags.service, group: flags.group, device: flags.device })
      .catch(
        naming({
          'querystring.service': '--service',
          'querystring.group': '--group',
          'querystring.device': '--device',
        }),
      );
    if (flags.json) return void io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    io.stdout.write(
      formatTable(
        ['ID', 'ON', 'SERVICE', 'IMAGE', 'CREATED'],
        list.map((pin) => [
          pin.id,
          pin.group !== null ? `group/${pin.group}` : `device/${pin.device}`,
          pin.service,
          pin.image,
          pin.createdAt,
        ]),
      ),
    );
  });

  withConnection(
    pins
      .command('rm')
      .argument('<id>', 'the pin id (podfleet pins ls)')
      .description('remove a pin: the service follows its assignment (and auto-update) again'),
  ).action(async (id: string, flags: ConnectionFlags) => {
    await (await clientFor(flags)).deletePin(id).catch(naming({ 'params.id': 'ID' }));
    io.stdout.write(`removed pin ${id}\n`);
  });
}
