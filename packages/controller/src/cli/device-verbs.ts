import type { Command } from 'commander';
import type { ServiceState, StateReport } from '@podfleet/shared';
import type { DeviceDetailView } from '../devices/schemas.js';
import {
  ApiError,
  clientFor,
  naming,
  withConnection,
  type ConnectionFlags,
  type Json,
} from './api-client.js';
import { CliError, type CliIo } from './io.js';
import { formatLabels, formatTable } from './table.js';
import { visible } from './terminal-text.js';

type Flags = ConnectionFlags & { json?: boolean };
type Detail = Json<DeviceDetailView>;

/** `devices show`, `devices rm`, `devices label`: one device, over /v1/devices/:id. */
export function registerDeviceVerbs(devices: Command, io: CliIo): void {
  withConnection(
    devices
      .command('show')
      .argument('<id>', 'device id')
      .description('one device: labels, groups, pins, versions and what each service runs')
      .option('--json', 'print the device as JSON'),
  ).action(async (id: string, flags: Flags) => {
    const api = await clientFor(flags);
    const device = await api
      .request<Detail>('GET', `/v1/devices/${encodeURIComponent(id)}`)
      .catch(naming({ 'params.id': 'ID' }));
    if (flags.json) return void io.stdout.write(`${JSON.stringify(device, null, 2)}\n`);
    io.stdout.write(describeDevice(device));
  });

  withConnection(
    devices
      .command('rm')
      .argument('<id>', 'device id')
      .description(
        'forget a device: its memberships, pins and events go, its credentials stop working (admin token)',
      ),
  ).action(async (id: string, flags: ConnectionFlags) => {
    const api = await clientFor(flags);
    await api
      .request('DELETE', `/v1/devices/${encodeURIComponent(id)}`)
      .catch(naming({ 'params.id': 'ID' }));
    io.stdout.write(`deleted device ${id}\n`);
  });

  withConnection(
    devices
      .command('label')
      .argument('<id>', 'device id')
      .argument('<changes...>', 'k=v sets a label, k- removes it')
      .description('set or remove labels of a device')
      .option('--json', 'print the device as JSON'),
  )
    .addHelpText('after', '\nExample:\n  podfleet devices label pi-17 site=berlin canary-')
    .action(async (id: string, changes: string[], flags: Flags) => {
      const labels = labelPatch(changes);
      const api = await clientFor(flags);
      const device = await api
        .request<Detail>('PATCH', `/v1/devices/${encodeURIComponent(id)}`, { labels })
        .catch(namingLabels);
      if (flags.json) return void io.stdout.write(`${JSON.stringify(device, null, 2)}\n`);
      io.stdout.write(`${id} labels: ${formatLabels(device.labels)}\n`);
    });
}

/** `body.labels.Bad Key: Invalid key in record` → `LABEL Bad Key: Invalid key in record`. */
function namingLabels(error: unknown): never {
  if (!(error instanceof ApiError)) throw error;
  const rename = (line: string) => line.replace(/^body\.labels\./, 'LABEL ');
  throw new ApiError(error.status, rename(error.reason), error.issues.map(rename));
}

/** `k=v` sets, `k-` removes (as `kubectl label` reads them): a JSON merge patch of the labels. */
export function labelPatch(changes: readonly string[]): Record<string, string | null> {
  const patch: Record<string, string | null> = {};
  for (const change of changes) {
    const eq = change.indexOf('=');
    if (eq > 0) patch[change.slice(0, eq)] = change.slice(eq + 1);
    else if (eq < 0 && change.length > 1 && change.endsWith('-')) patch[change.slice(0, -1)] = null;
    else throw new CliError([`LABEL: not k=v or k-: ${JSON.stringify(change)}`]);
  }
  return patch;
}

/** The device as `name: value` lines, then one row per service of its last state report. */
function describeDevice(device: Detail): string {
  const report = device.lastState as Partial<Json<StateReport>> | null;
  const host = device.podmanVersion
    ? `podman ${device.podmanVersion}, systemd ${device.systemdVersion ?? '?'}, ${device.arch ?? '?'}, ${device.unitStyle ?? '?'} units`
    : '-';
  const fields: [string, string][] = [
    ['ID', device.id],
    ['ONLINE', `${device.online ? 'yes' : 'no'} (last seen ${device.lastSeen ?? 'never'})`],
    ['LABELS', formatLabels(device.labels)],
    ['GROUPS', device.groups.join(',') || '-'],
    ['GENERATION', `applied ${device.appliedGeneration} of ${device.desiredGeneration}`],
    ['AGENT', device.agentVersion ?? '-'],
    ['HOST', host],
    ['PINS', device.pins.map((pin) => `${pin.service}=${pin.image}`).join(' ') || '-'],
    ['REPORTED', report?.reportedAt ? `${report.reportedAt} (device clock)` : 'never'],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  const head = fields.map(([name, value]) => `${name.padEnd(width)}  ${visible(value)}\n`).join('');
  const services = (report?.services ?? []) as Json<ServiceState>[];
  if (services.length === 0) return `${head}\nno services reported\n`;
  return `${head}\n${formatTable(
    ['SERVICE', 'IMAGE', 'HEALTH', 'READY', 'RESTARTS', 'ACTIVE SINCE', 'REJECTED'],
    services.map((service) => [
      service.name,
      service.image,
      service.health ?? (service.ready ? 'ready' : 'not ready'),
      service.ready ? 'yes' : 'no',
      String(service.unit.restarts),
      service.unit.activeSince ?? '-',
      service.rejected ? `${service.rejected.image} (${service.rejected.reason})` : '-',
    ]),
  )}`;
}
