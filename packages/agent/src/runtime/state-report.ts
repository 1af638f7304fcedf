import { arch } from 'node:os';
import {
  unitStyleFor,
  type DeviceManifest,
  type ServiceSpec,
  type ServiceState,
  type StateReport,
  type UnitFile,
  type UnitStyle,
} from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type { HostDriver, UnitStatus } from '../host/host-driver.js';
import type { AppliedRecord, AppliedService } from '../state/applied-record.js';
import { AGENT_VERSION } from './agent-version.js';

export interface StateReportInput {
  device: string;
  driver: HostDriver;
  clock: Clock;
  record: AppliedRecord | undefined;
  /** The manifest last accepted, when the agent has one. */
  manifest: DeviceManifest | undefined;
}

// Node's names → the OCI / Podman names a registry and an operator use.
const OCI_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64' };

/**
 * The device as it is now: per service, the version it runs (the last one that passed its gate,
 * else the one asked for), systemd's view of its unit and container, and whether it is ready.
 */
export async function readStateReport(input: StateReportInput): Promise<StateReport> {
  const { driver, record, manifest } = input;
  const [podman, systemd, files] = await Promise.all([
    driver.podmanVersion(),
    driver.systemdVersion(),
    driver.listUnitFiles(),
  ]);
  const wanted = manifest?.services ?? [];
  const names = [
    ...wanted.map((spec) => spec.name),
    ...(record?.services ?? [])
      .map((s) => s.spec.name)
      .filter((n) => !wanted.some((w) => w.name === n)),
  ];
  const services = await Promise.all(
    names.map((name) => {
      const recorded = record?.services.find((s) => s.spec.name === name);
      const spec = recorded?.spec ?? wanted.find((s) => s.name === name)!;
      return serviceState(driver, spec, recorded, files);
    }),
  );
  return {
    device: input.device,
    generation: record?.generation ?? 0,
    reportedAt: new Date(input.clock.now()).toISOString(),
    agent: { version: AGENT_VERSION },
    host: { podman, systemd, arch: OCI_ARCH[arch()] ?? arch(), unitStyle: styleOf(podman, record) },
    services,
  };
}

async function serviceState(
  driver: HostDriver,
  spec: ServiceSpec,
  recorded: AppliedService | undefined,
  files: UnitFile[],
): Promise<ServiceState> {
  const service = await driver.unitStatus(`${spec.name}.service`);
  const socket = spec.socket ? await driver.unitStatus(`${spec.name}.socket`) : undefined;
  const container = service.container;
  return {
    name: spec.name,
    image: spec.image,
    ...(container ? { imageId: container.imageId } : {}),
    unit: {
      active: service.active,
      sub: service.sub,
      restarts: service.restarts,
      ...(service.activeSince ? { activeSince: service.activeSince } : {}),
    },
    ...(container
      ? { container: { id: container.id, state: 'running', health: container.health } }
      : {}),
    ready: recorded !== undefined && onDisk(recorded, files) && up(spec, service, socket),
  };
}

/**
 * Ready: the version on disk is the one that passed the gate, and it is up now — its unit
 * active (a socket-activated one: its socket listening, its service not failing) and its
 * container, if it has a healthcheck, healthy.
 */
function up(spec: ServiceSpec, service: UnitStatus, socket: UnitStatus | undefined): boolean {
  const failing =
    service.active === 'failed' ||
    (service.active === 'activating' && service.sub === 'auto-restart');
  const active = socket ? socket.active === 'active' && !failing : service.active === 'active';
  const health = service.container?.health;
  return active && (!spec.health || health === undefined || health === 'healthy');
}

function onDisk(recorded: AppliedService, files: UnitFile[]): boolean {
  return recorded.files.every((file) =>
    files.some((f) => f.kind === file.kind && f.name === file.name && f.contents === file.contents),
  );
}

function styleOf(podman: string, record: AppliedRecord | undefined): UnitStyle {
  try {
    return unitStyleFor(podman);
  } catch {
    return record?.style ?? 'service';
  }
}
