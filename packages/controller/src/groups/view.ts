import type { PrismaClient } from '../db/client.js';
import type { Transaction } from '../audit/change.js';
import { formatSelector, parseSelector } from '../desired/index.js';
import { HttpError, notFound } from '../http/errors.js';
import type { GroupView } from './schemas.js';

/** What GroupView needs read with a group. */
export const groupInclude = {
  members: { select: { deviceId: true }, orderBy: { deviceId: 'asc' } },
  assignments: { orderBy: { serviceName: 'asc' } },
  pins: { orderBy: { serviceName: 'asc' } },
} as const;

interface GroupRow {
  name: string;
  selector: string | null;
  priority: number;
  createdAt: Date;
  updatedAt: Date;
  members: { deviceId: string }[];
  assignments: { serviceName: string; revision: number }[];
  pins: { id: string; serviceName: string; image: string }[];
}

export function groupView(group: GroupRow): GroupView {
  return {
    name: group.name,
    selector: group.selector,
    priority: group.priority,
    members: group.members.map((member) => member.deviceId),
    services: group.assignments.map((a) => ({ service: a.serviceName, revision: a.revision })),
    pins: group.pins.map((pin) => ({ id: pin.id, service: pin.serviceName, image: pin.image })),
    createdAt: group.createdAt,
    updatedAt: group.updatedAt,
  };
}

/**
 * A selector as stored: canonical (equal selectors read equal, whatever the spacing or order),
 * null for none. The text was validated by SelectorText; the empty selector is stored as none,
 * since it matches nothing either way.
 */
export function storedSelector(text: string | null | undefined): string | null {
  if (text === undefined || text === null) return null;
  const parsed = parseSelector(text);
  if (!parsed.ok) throw new Error(`selector: ${parsed.message}`);
  return parsed.selector.requirements.length === 0 ? null : formatSelector(parsed.selector);
}

/** 404 naming the first device in `ids` that does not exist, with its field path. */
export async function requireDevices(
  store: PrismaClient | Transaction,
  ids: readonly string[],
  field: string,
): Promise<void> {
  if (ids.length === 0) return;
  const found = await store.device.findMany({
    where: { id: { in: [...ids] } },
    select: { id: true },
  });
  const known = new Set(found.map((device) => device.id));
  const missing = ids.flatMap((id, index) => (known.has(id) ? [] : [{ id, index }]));
  if (missing.length === 0) return;
  throw new HttpError(
    404,
    `device ${missing[0]!.id} not found`,
    missing.map(({ id, index }) => `${field}[${index}]: device ${id} not found`),
  );
}

/**
 * Locks the group's row until the transaction ends, 404 unless it exists: changes of one group's
 * members, assignments and pins take turns (each reads what the one before wrote, so its audit row
 * says what it replaced), and a deletion that checked the group is unused stays right until it
 * commits (an assignment or pin racing it waits, then finds no group).
 */
export async function lockGroup(tx: Transaction, name: string): Promise<void> {
  const rows = await tx.$queryRaw<{ name: string }[]>`
    SELECT name FROM groups WHERE name = ${name} FOR UPDATE`;
  if (rows.length === 0) throw notFound(`group ${name}`);
}

/** 404 unless the group exists. */
export async function requireGroup(store: PrismaClient | Transaction, name: string): Promise<void> {
  if (!(await store.group.count({ where: { name } }))) throw notFound(`group ${name}`);
}
