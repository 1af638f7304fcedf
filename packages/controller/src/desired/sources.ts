import { ServiceSpec } from '@podfleet/shared';
import type { PrismaClient } from '../db/client.js';
import type { Pins, RolloutOverrides, ServiceTable } from './image-rule.js';
import type { Group, LabeledDevice } from './membership.js';
import type { DesiredSources, Revision } from './resolve.js';
import { parseSelector } from './selector.js';

/** Prisma's interactive-transaction client, or the client itself. */
export type Db = Pick<
  PrismaClient,
  'device' | 'group' | 'assignment' | 'pin' | 'rolloutDevice' | '$queryRawUnsafe'
>;

export interface StoredDevice extends LabeledDevice {
  desiredGeneration: number;
  appliedGeneration: number;
  /** contentHash of the stored manifest; null when there is none (or it predates the hash). */
  desiredHash: string | null;
}

interface DeviceRow {
  id: string;
  labels: string;
  desiredGeneration: number;
  appliedGeneration: number;
  desiredHash: string | null;
}

/** What a recompute reads of a stored manifest. */
export interface StoredManifest {
  device: string;
  generation: number;
  services: unknown[];
}

export interface FleetSnapshot extends DesiredSources {
  devices: StoredDevice[];
  groups: Group[];
}

/**
 * Everything desired state is computed from, read in a handful of queries. Rollout overrides are
 * given by the caller (the rollout engine owns them). Stored manifests are not read (a few hundred
 * bytes of JSON per device): their content hashes are; see storedManifests.
 */
export async function loadFleet(
  db: Db,
  rollouts: RolloutOverrides = new Map(),
): Promise<FleetSnapshot> {
  // One query after the other: inside a transaction they share one connection, and pg refuses
  // (soon) queries sent while another is running.
  // Plain SQL: Prisma's mapping of every device row held the event loop ~100 ms at 10,000
  // devices, on every recompute (each rollout batch makes one).
  const devices = await db.$queryRawUnsafe<DeviceRow[]>(
    `SELECT id, labels::text AS labels, desired_generation AS "desiredGeneration",
       applied_generation AS "appliedGeneration", desired_hash AS "desiredHash"
     FROM devices ORDER BY id`,
  );
  const groups = await db.group.findMany({ include: { members: { select: { deviceId: true } } } });
  const assignments = await db.assignment.findMany({
    include: { serviceRevision: { select: { revision: true, spec: true } } },
  });
  const pins = await db.pin.findMany();
  return {
    devices: devices.map((device) => ({
      id: device.id,
      labels: JSON.parse(device.labels) as Record<string, string>,
      desiredGeneration: device.desiredGeneration,
      appliedGeneration: device.appliedGeneration,
      desiredHash: device.desiredHash,
    })),
    groups: groups.map((group) =>
      toGroup(group.name, group.priority, group.selector, group.members),
    ),
    assignments: table(
      assignments.map((a) => [
        a.groupName,
        a.serviceName,
        revisionOf(a.serviceRevision.revision, a.serviceRevision.spec),
      ]),
    ),
    pins: {
      devices: table(
        pins.flatMap((p) => (p.deviceId ? [[p.deviceId, p.serviceName, p.image] as const] : [])),
      ),
      groups: table(
        pins.flatMap((p) => (p.groupName ? [[p.groupName, p.serviceName, p.image] as const] : [])),
      ),
    } satisfies Pins,
    rollouts,
  };
}

function toGroup(
  name: string,
  priority: number,
  selector: string | null,
  members: { deviceId: string }[],
): Group {
  const group: { name: string; priority: number; selector?: Group['selector']; members: string[] } =
    {
      name,
      priority,
      members: members.map((m) => m.deviceId),
    };
  if (selector) {
    const parsed = parseSelector(selector);
    // Stored selectors were validated when written; one that no longer parses matches nothing.
    if (parsed.ok) group.selector = parsed.selector;
  }
  return group;
}

function revisionOf(number: number, spec: unknown): Revision {
  return { number, spec: ServiceSpec.parse(spec) };
}

function table<T>(rows: (readonly [string, string, T])[]): ServiceTable<T> {
  const result = new Map<string, Map<string, T>>();
  for (const [owner, service, value] of rows) {
    let services = result.get(owner);
    if (!services) result.set(owner, (services = new Map()));
    services.set(service, value);
  }
  return result;
}

/** The stored manifests of some devices (a recompute needs them only now and then). */
export async function storedManifests(
  db: Db,
  ids: readonly string[],
): Promise<Map<string, StoredManifest>> {
  const result = new Map<string, StoredManifest>();
  if (ids.length === 0) return result;
  const rows = await db.device.findMany({
    where: { id: { in: [...ids] } },
    select: { id: true, desiredManifest: true },
  });
  for (const row of rows) {
    if (row.desiredManifest) result.set(row.id, row.desiredManifest as unknown as StoredManifest);
  }
  return result;
}
