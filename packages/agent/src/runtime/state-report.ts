import { arch } from 'node:os';
import {
  clipDeviceText,
  DEVICE_LIMITS,
  STATE_JOURNAL_LINES,
  unitStyleFor,
  type DeviceManifest,
  type ServiceSpec,
  type ServiceState,
  type StateReport,
  type UnitFile,
  type UnitStyle,
} from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type { HostDriver } from '../host/host-driver.js';
import type { AppliedRecord, AppliedService } from '../state/applied-record.js';
import { AGENT_VERSION } from './agent-version.js';
import { judgeService } from './service-health.js';

export interface StateReportInput {
  device: string;
  driver: HostDriver;
  clock: Clock;
  record: AppliedRecord | undefined;
  /** The manifest last accepted, when the agent has one. */
  manifest: DeviceManifest | undefined;
  /** NRestarts of a service at the agent's last look (judgeService); undefined: not looked yet. */
  lastRestarts?: (service: string) => number | undefined;
}

// Node's names → the OCI / Podman names a registry and an operator use.
const OCI_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64' };

/**
 * The device as it is now: per service, the version it runs (the last one that passed its gate,
 * else the one asked for), systemd's view of its unit and container, its health over time
 * (judgeService) with the journal's last lines when it is not ready, and the image it rejected.
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
      const last = input.lastRestarts?.(name);
      return serviceState(driver, spec, recorded, files, last, input.clock.now());
    }),
  );
  return fitted({
    device: input.device,
    generation: record?.generation ?? 0,
    reportedAt: new Date(input.clock.now()).toISOString(),
    agent: { version: AGENT_VERSION },
    host: { podman, systemd, arch: OCI_ARCH[arch()] ?? arch(), unitStyle: styleOf(podman, record) },
    services,
  });
}

async function serviceState(
  driver: HostDriver,
  spec: ServiceSpec,
  recorded: AppliedService | undefined,
  files: UnitFile[],
  lastRestarts: number | undefined,
  now: number,
): Promise<ServiceState> {
  const service = await driver.unitStatus(`${spec.name}.service`);
  const socket = spec.socket ? await driver.unitStatus(`${spec.name}.socket`) : undefined;
  const container = service.container;
  const gated = recorded !== undefined && onDisk(recorded, files);
  const verdict = judgeService({
    spec,
    service,
    ...(socket ? { socket } : {}),
    gated,
    lastRestarts,
    now,
  });
  const journal =
    verdict.health === 'ready' || verdict.health === 'starting' || verdict.health === 'drifted'
      ? undefined
      : await journalOf(driver, service.unit);
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
    ready: verdict.health === 'ready',
    health: verdict.health,
    ...(verdict.reason !== undefined
      ? { reason: clipDeviceText(verdict.reason, DEVICE_LIMITS.text) }
      : {}),
    ...(journal && journal.length > 0 ? { journal } : {}),
    ...(recorded?.rejected ? { rejected: recorded.rejected } : {}),
  };
}

/** The unit's last journal lines, clipped to the bounds; none when journald cannot be read. */
async function journalOf(driver: HostDriver, unit: string): Promise<string[] | undefined> {
  try {
    const lines = await driver.journal(unit, STATE_JOURNAL_LINES);
    return lines
      .slice(-STATE_JOURNAL_LINES)
      .map((line) => clipDeviceText(line, DEVICE_LIMITS.journalLine));
  } catch {
    return undefined;
  }
}

/**
 * The report within the bytes a controller takes (DEVICE_LIMITS.stateBytes): journal lines go
 * first, as they are the part a large device can do without.
 */
function fitted(report: StateReport): StateReport {
  if (Buffer.byteLength(JSON.stringify(report)) <= DEVICE_LIMITS.stateBytes) return report;
  return { ...report, services: report.services.map(({ journal: _, ...rest }) => rest) };
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
