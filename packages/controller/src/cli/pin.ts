import type { Command } from 'commander';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import { CliError, EXIT, type CliIo } from './io.js';

interface PinFlags extends ConnectionFlags {
  device?: string;
  rm?: boolean;
  json?: boolean;
}

export function registerPin(program: Command, io: CliIo): void {
  withConnection(
    program
      .command('pin')
      .description(
        "pin a group's (or a device's) service to an image digest; pinned means auto-update off",
      )
      .usage('[--device ID] [GROUP] SERVICE IMAGE  |  --rm [--device ID] [GROUP] SERVICE')
      .argument('<words...>', 'GROUP SERVICE IMAGE, or SERVICE IMAGE with --device')
      .option('--device <id>', 'pin on this device instead of a group')
      .option('--rm', 'remove the pin instead (no IMAGE)')
      .option('--json', 'print the pin as JSON'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  podfleet pin edge web registry.example/acme/web@sha256:…\n  podfleet pin --device pi-17 web registry.example/acme/web@sha256:…\n  podfleet pin --rm edge web',
    )
    .action(async (words: string[], flags: PinFlags) => {
      const onDevice = flags.device !== undefined;
      const shape = `${onDevice ? '' : 'GROUP '}SERVICE${flags.rm ? '' : ' IMAGE'}`;
      if (words.length !== shape.split(' ').length) {
        const got = `${words.length} argument${words.length === 1 ? '' : 's'}`;
        throw new CliError([`expected ${shape}${onDevice ? ' with --device' : ''}, got ${got}`]);
      }
      const [group, service, image] = (onDevice ? [undefined, ...words] : words) as [
        string | undefined,
        string,
        string | undefined,
      ];
      const target = group !== undefined ? { group } : { device: flags.device! };
      const where = group !== undefined ? `group ${group}` : `device ${flags.device}`;
      const api = await clientFor(flags);

      if (flags.rm) {
        const [pin] = await api.pins({ ...target, service });
        if (!pin) throw new CliError([`404 no pin of ${service} on ${where}`], EXIT.failed);
        await api.deletePin(pin.id);
        io.stdout.write(`unpinned ${service} on ${where}\n`);
        return;
      }
      const pin = await api.setPin({ ...target, service, image: image! }).catch(
        naming({
          'body.image': 'IMAGE',
          'body.service': 'SERVICE',
          'body.group': 'GROUP',
          'body.device': '--device',
        }),
      );
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(pin, null, 2)}\n`);
        return;
      }
      io.stdout.write(`pinned ${service} on ${where} to ${pin.image}\n`);
    });
}
