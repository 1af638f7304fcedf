import { Prisma, type PrismaClient } from '../db/client.js';
import {
  computeCompliance,
  type ComplianceState,
  type DeviceCompliance,
  type ReportedService,
} from './compliance.js';

type Db = Pick<PrismaClient, '$queryRaw'>;

interface InputRow {
  id: string;
  online: boolean;
  desiredGeneration: number;
  desired: { name: string; image: string }[] | null;
  reportedGeneration: number | null;
  reported: ReportedService[] | null;
}

/**
 * The compliance of each device in `ids`, in two queries whatever their number: Postgres picks
 * out the manifest's images and the report's services (without units and containers), and only
 * the apply and rollback events of each device's desired generation or a later one.
 */
export async function readCompliance(
  db: Db,
  ids: readonly string[],
): Promise<Map<string, DeviceCompliance>> {
  const result = new Map<string, DeviceCompliance>();
  if (ids.length === 0) return result;
  // One after the other: inside a transaction both would share one connection.
  const rows = await db.$queryRaw<InputRow[]>`
    SELECT d.id, d.online, d.desired_generation AS "desiredGeneration",
      CASE WHEN jsonb_typeof(d.desired_manifest->'services') = 'array' THEN
        (SELECT coalesce(jsonb_agg(jsonb_build_object('name', s->>'name', 'image', s->>'image')), '[]'::jsonb)
           FROM jsonb_array_elements(d.desired_manifest->'services') s)
      END AS desired,
      CASE WHEN jsonb_typeof(d.last_state->'generation') = 'number'
        THEN (d.last_state->>'generation')::int END AS "reportedGeneration",
      CASE WHEN jsonb_typeof(d.last_state->'services') = 'array' THEN
        (SELECT coalesce(jsonb_agg(s - 'unit' - 'container'), '[]'::jsonb)
           FROM jsonb_array_elements(d.last_state->'services') s)
      END AS reported
    FROM devices d WHERE d.id = ANY(${[...ids]}::text[])`;
  const events = await db.$queryRaw<{ deviceId: string; payload: Record<string, unknown> }[]>`
    SELECT e.device_id AS "deviceId", e.payload
    FROM device_events e JOIN devices d ON d.id = e.device_id
    WHERE e.device_id = ANY(${[...ids]}::text[]) AND d.desired_generation > 0
      AND e.type IN ('apply', 'rollback')
      AND jsonb_typeof(e.payload->'generation') = 'number'
      AND (e.payload->>'generation')::numeric >= d.desired_generation
    ORDER BY e.received_at, e.id`;
  const byDevice = new Map<string, Record<string, unknown>[]>();
  for (const { deviceId, payload } of events) {
    const list = byDevice.get(deviceId);
    if (list) list.push(payload);
    else byDevice.set(deviceId, [payload]);
  }
  for (const row of rows) {
    result.set(
      row.id,
      computeCompliance({
        online: row.online,
        desired:
          row.desired && row.desiredGeneration > 0
            ? { generation: row.desiredGeneration, services: row.desired }
            : null,
        reported:
          row.reported && row.reportedGeneration !== null
            ? { generation: row.reportedGeneration, services: row.reported }
            : null,
        events: byDevice.get(row.id) ?? [],
      }),
    );
  }
  return result;
}

/** One device's compliance (a device that exists: the caller just read or wrote it). */
export async function complianceOf(db: Db, id: string): Promise<DeviceCompliance> {
  return (await readCompliance(db, [id])).get(id) ?? { state: 'unknown', services: [] };
}

/** Devices read per pass of a scan: two queries, about a megabyte of JSON at most. */
const SCAN_CHUNK = 2000;

/**
 * The first `limit` devices after `after` (by id) matching `where` whose overall compliance is
 * `wanted`, with theirs, and whether more may follow: compliance is computed, not stored, so a
 * filter reads devices in id order a chunk at a time until the page is full (one pass over the
 * fleet at most, never a query per device).
 */
export async function scanByCompliance(
  db: Db,
  where: Prisma.Sql[],
  wanted: ComplianceState,
  after: string | undefined,
  limit: number,
): Promise<{ ids: string[]; compliance: Map<string, DeviceCompliance>; more: boolean }> {
  const ids: string[] = [];
  const compliance = new Map<string, DeviceCompliance>();
  let cursor = after;
  for (;;) {
    const conditions = [...where];
    if (cursor !== undefined) conditions.push(Prisma.sql`id > ${cursor}::text`);
    const filter = conditions.length
      ? Prisma.sql`WHERE ${Prisma.join(conditions, ' AND ')}`
      : Prisma.empty;
    const chunk = await db.$queryRaw<{ id: string }[]>`
      SELECT id FROM devices ${filter} ORDER BY id LIMIT ${SCAN_CHUNK}::int`;
    const computed = await readCompliance(
      db,
      chunk.map((row) => row.id),
    );
    for (const { id } of chunk) {
      const found = computed.get(id);
      if (found?.state !== wanted) continue;
      if (ids.length === limit) return { ids, compliance, more: true };
      ids.push(id);
      compliance.set(id, found);
    }
    if (chunk.length < SCAN_CHUNK) return { ids, compliance, more: false };
    cursor = chunk.at(-1)!.id;
  }
}
