import { InvalidArgumentError, type Command } from 'commander';
import { commandGroup } from './command-group.js';
import type { DeviceView } from '../devices/schemas.js';
import {
  clientFor,
  naming,
  withConnection,
  type ConnectionFlags,
  type Json,
} from './api-client.js';
import { registerDeviceVerbs } from './device-verbs.js';
import { CliError, type CliIo } from './io.js';
import { formatLabels, formatTable } from './table.js';
import { COMPLIANCE_STATES } from '../compliance/states.js';

interface ListFlags extends ConnectionFlags {
  selector?: string;
  group?: string;
  online?: boolean;
  offline?: boolean;
  compliance?: string;
  json?: boolean;
}

export function registerDevices(program: Command, io: CliIo): void {
  const devices = commandGroup(program, 'devices', 'list the devices of the fleet', io);
  withConnection(
    devices
      .command('ls')
      .description('list devices, filtered by label selector, group or liveness')
      .option('--selector <selector>', "label selector, e.g. 'site=berlin,tier in (edge,gw)'")
      .option('--group <group>', 'devices in this group (listed or matching its selector)')
      .option('--online', 'only devices that are online')
      .option('--offline', 'only devices that are offline')
      .option(
        '--compliance <state>',
        `only devices whose overall compliance is this: ${COMPLIANCE_STATES.join(', ')}`,
      )
      .option('--json', 'print the devices as JSON'),
  )
    .addHelpText(
      'after',
      "\nExamples:\n  podfleet devices ls --selector 'site=berlin,!canary'\n  podfleet devices ls --group edge --offline --json\n  podfleet devices ls --compliance failed" +
        '\n\nCOMPLIANCE compares what the device reports with its desired manifest: in-sync runs' +
        '\nexactly the desired image, ready (docs/decisions/012-compliance.md).',
    )
    .action(async (flags: ListFlags) => {
      if (flags.online && flags.offline) {
        throw new CliError(['--online and --offline: give one or neither']);
      }
      const api = await clientFor(flags);
      const online = flags.online ? true : flags.offline ? false : undefined;
      const list = await api
        .devices({
          selector: flags.selector,
          group: flags.group,
          online,
          compliance: flags.compliance,
        })
        .catch(
          naming({
            'querystring.selector': '--selector',
            'querystring.group': '--group',
            'querystring.compliance': '--compliance',
          }),
        );
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        formatTable(
          ['ID', 'ONLINE', 'COMPLIANCE', 'GENERATION', 'LAST SEEN', 'LABELS'],
          list.map((device) => [
            device.id,
            device.online ? 'yes' : 'no',
            complianceText(device.compliance),
            `${device.appliedGeneration}/${device.desiredGeneration}`,
            device.lastSeen ?? '-',
            formatLabels(device.labels),
          ]),
        ),
      );
    });

  withConnection(
    devices
      .command('add')
      .argument('<ids...>', 'device ids')
      .description('register devices ahead of their agents (provisioning; admin token)')
      .option('--labels <k=v,...>', 'labels of every device added', parseLabelList, {})
      .option('--json', 'print the devices as JSON'),
  )
    .addHelpText(
      'after',
      '\nExample:\n  podfleet devices add pi-01 pi-02 --labels site=berlin,tier=edge',
    )
    .action(
      async (
        ids: string[],
        flags: ConnectionFlags & { labels: Record<string, string>; json?: boolean },
      ) => {
        const api = await clientFor(flags);
        const added: unknown[] = [];
        for (const id of ids) {
          const device = await api
            .request('POST', '/v1/devices', { id, labels: flags.labels })
            .catch(naming({ 'body.id': id, 'body.labels': '--labels' }));
          added.push(device);
          if (!flags.json) io.stdout.write(`added ${id}\n`);
        }
        if (flags.json) io.stdout.write(`${JSON.stringify(added, null, 2)}\n`);
      },
    );

  registerDeviceVerbs(devices, io);
}

/**
 * The overall state, and the services in that state with a failure's reason:
 * `failed (web: start-timeout)`.
 */
export function complianceText({ state, services }: Json<DeviceView>['compliance']): string {
  if (state === 'in-sync' || state === 'offline' || state === 'unknown') return state;
  const named = services
    .filter((s) => s.state === state)
    .map((s) => (s.failure ? `${s.service}: ${s.failure.reason}` : s.service));
  return named.length > 0 ? `${state} (${named.join(', ')})` : state;
}

/** `k=v,k2=v2` → labels; the controller checks each key and value. */
export function parseLabelList(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`not k=v: ${JSON.stringify(pair)}`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}
