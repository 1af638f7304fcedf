import { Prisma, type PrismaClient } from '../db/client.js';
import { groupsOf, parseSelector, type Group } from '../desired/index.js';
import { selectorCondition } from '../devices/selector-sql.js';
import type { Transaction } from '../audit/change.js';

type Store = PrismaClient | Transaction;

interface StoredGroup {
  name: string;
  selector: string | null;
  priority: number;
}

/** A stored group as the desired-state core takes it; members as given. */
export function desiredGroup(group: StoredGroup, members: readonly string[] = []): Group {
  const parsed = group.selector === null ? undefined : parseSelector(group.selector);
  return {
    name: group.name,
    priority: group.priority,
    members,
    // Selectors are validated on the way in; one that no longer parses selects nobody.
    ...(parsed?.ok ? { selector: parsed.selector } : {}),
  };
}

/** SQL: the `devices` row is in the group, listed or selected (what groupsOf decides). */
export function memberCondition(group: StoredGroup): Prisma.Sql {
  const listed = Prisma.sql`devices.id IN (SELECT device_id FROM group_members WHERE group_name = ${group.name}::text)`;
  const parsed = group.selector === null ? undefined : parseSelector(group.selector);
  if (!parsed?.ok) return listed;
  return Prisma.sql`(${listed} OR ${selectorCondition(parsed.selector, Prisma.raw('devices.labels'))})`;
}

/** Ids of the devices in the group now, in id order. */
export async function devicesInGroup(store: Store, group: StoredGroup): Promise<string[]> {
  const rows = await store.$queryRaw<{ id: string }[]>`
    SELECT id FROM devices WHERE ${memberCondition(group)} ORDER BY id`;
  return rows.map((row) => row.id);
}

/** The groups a device is in now, highest priority first. */
export async function groupsOfDevice(
  store: Store,
  device: { id: string; labels: Record<string, string> },
): Promise<string[]> {
  const groups = await store.group.findMany({
    select: {
      name: true,
      selector: true,
      priority: true,
      members: { where: { deviceId: device.id }, select: { deviceId: true } },
    },
  });
  const desired = groups.map((group) =>
    desiredGroup(
      group,
      group.members.map((member) => member.deviceId),
    ),
  );
  return groupsOf(device, desired).map((group) => group.name);
}
