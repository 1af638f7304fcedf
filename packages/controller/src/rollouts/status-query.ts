import { storedRolloutSpec, type FailureReason } from '@podfleet/shared';
import type { PrismaClient } from '../db/client.js';
import type { DeviceRolloutState } from './progress.js';
import {
  FAILURES_SHOWN,
  emptyCounts,
  type RolloutBatchStatus,
  type RolloutDeviceStatus,
  type RolloutStatus,
} from './status.js';

type Db = Pick<PrismaClient, '$queryRawUnsafe'>;

interface CountRow {
  batch: number;
  state: DeviceRolloutState;
  offline: boolean;
  n: number;
}

interface DeviceRow {
  id: string;
  batch: number;
  state: DeviceRolloutState;
  from: string;
  to: string;
  reason: string | null;
  online: boolean;
  hold: string | null;
  failureReason: FailureReason | null;
  failureUnit: string | null;
  failureJournal: string[] | null;
  accepted: boolean;
}

const UUID = /^[0-9a-f-]{36}$/i;

const DEVICE_COLUMNS = `rd.device_id AS id, rd.batch, rd.state::text AS state, rd.from_image AS "from",
  rd.to_image AS "to", rd.reason, d.online, rd.hold, rd.failure_reason AS "failureReason",
  rd.failure_unit AS "failureUnit", rd.failure_journal AS "failureJournal",
  rd.accepted_failure AS accepted`;

interface StatusRow {
  id: string;
  service: string;
  spec: unknown;
  targetImage: string;
  state: RolloutStatus['state'];
  reason: string | null;
  currentBatch: number;
  batchStartedAt: Date | string | null;
  awaitingApproval: boolean;
  approvedBatches: number[];
  waiting: string[];
  createdBy: string;
  createdAt: Date | string;
  finishedAt: Date | string | null;
  excluded: unknown;
  counts: unknown;
  failures: unknown;
}

/**
 * A rollout as operators see it: counts per batch and state, and the first failures with their
 * reasons. One statement: Postgres counts (GROUP BY) and picks the failures, so a request costs
 * one round trip and about the same for 10 devices or 10,000, and the answer stays a few kilobytes.
 */
export async function readStatus(db: Db, id: string): Promise<RolloutStatus | undefined> {
  if (!UUID.test(id)) return undefined;
  const [row] = await db.$queryRawUnsafe<StatusRow[]>(
    `WITH counted AS (
       SELECT rd.batch, rd.state::text AS state,
         (NOT d.online AND rd.state IN ('updating', 'pending', 'deferred')) AS offline, count(*)::int AS n
       FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id
       WHERE rd.rollout_id = $1::uuid GROUP BY 1, 2, 3
     ), failed AS (
       SELECT ${DEVICE_COLUMNS} FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id
       WHERE rd.rollout_id = $1::uuid AND rd.state = 'failed'
       ORDER BY rd.batch, rd.device_id LIMIT ${FAILURES_SHOWN}
     )
     SELECT r.id, r.service, r.spec, r.target_image AS "targetImage", r.state::text AS state, r.reason,
       r.current_batch AS "currentBatch", r.batch_started_at AS "batchStartedAt",
       r.awaiting_approval AS "awaitingApproval", r.approved_batches AS "approvedBatches", r.waiting,
       r.created_by AS "createdBy", r.created_at AS "createdAt", r.finished_at AS "finishedAt",
       r.excluded,
       (SELECT coalesce(json_agg(counted ORDER BY batch), '[]') FROM counted)::text AS counts,
       (SELECT coalesce(json_agg(failed ORDER BY batch, id), '[]') FROM failed)::text AS failures
     FROM rollouts r WHERE r.id = $1::uuid`,
    id,
  );
  if (!row) return undefined;
  const spec = storedRolloutSpec(json(row.spec));
  const counts = { ...emptyCounts(), total: 0 };
  const batches: RolloutBatchStatus[] = [];
  for (const { batch: index, state, offline, n } of json(row.counts) as CountRow[]) {
    let batch = batches[index];
    if (!batch) {
      batch = batches[index] = {
        index,
        kind: index === 0 && spec.strategy.canary > 0 ? 'canary' : 'batch',
        state: batchState(index, row),
        total: 0,
        counts: emptyCounts(),
      };
    }
    batch.total += n;
    batch.counts[state] += n;
    counts.total += n;
    counts[state] += n;
    // Offline devices still waiting are counted apart, as pending rather than failed.
    if (offline) {
      batch.counts.offline += n;
      counts.offline += n;
    }
  }
  return {
    id: row.id,
    service: row.service,
    targetImage: row.targetImage,
    state: row.state,
    ...(row.reason ? { reason: row.reason } : {}),
    spec,
    currentBatch: row.currentBatch,
    awaitingApproval: row.awaitingApproval,
    waiting: row.waiting,
    approvedBatches: row.approvedBatches,
    createdBy: row.createdBy,
    createdAt: new Date(row.createdAt).toISOString(),
    ...(row.finishedAt ? { finishedAt: new Date(row.finishedAt).toISOString() } : {}),
    counts,
    batches: batches.filter(Boolean),
    failures: (json(row.failures) as DeviceRow[]).map(deviceStatus),
    excluded: json(row.excluded) as { id: string; reason: string }[],
  };
}

export interface DeviceListQuery {
  batch?: number | undefined;
  state?: DeviceRolloutState | undefined;
  limit: number;
  /** Start after this device (batch, id), the key the list is sorted by. */
  after?: readonly [number, string] | undefined;
}

/** One page of a rollout's devices, by batch and id; undefined when there is no such rollout. */
export async function readDevices(
  db: Db,
  id: string,
  query: DeviceListQuery,
): Promise<RolloutDeviceStatus[] | undefined> {
  if (!UUID.test(id)) return undefined;
  const [exists, rows] = await Promise.all([
    db.$queryRawUnsafe<unknown[]>('SELECT 1 FROM rollouts WHERE id = $1::uuid', id),
    db.$queryRawUnsafe<DeviceRow[]>(
      `SELECT ${DEVICE_COLUMNS} FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id
       WHERE rd.rollout_id = $1::uuid
         AND ($2::int IS NULL OR rd.batch = $2::int)
         AND ($3::text IS NULL OR rd.state::text = $3::text)
         AND ($4::int IS NULL OR (rd.batch, rd.device_id) > ($4::int, $5::text))
       ORDER BY rd.batch, rd.device_id LIMIT $6::int`,
      id,
      query.batch ?? null,
      query.state ?? null,
      query.after?.[0] ?? null,
      query.after?.[1] ?? null,
      query.limit,
    ),
  ]);
  return exists.length === 0 ? undefined : rows.map(deviceStatus);
}

/** A json/jsonb column of a raw query: parsed by the driver, or text (the ::text columns above). */
function json(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

function batchState(
  index: number,
  row: Pick<StatusRow, 'state' | 'currentBatch' | 'batchStartedAt'>,
): RolloutBatchStatus['state'] {
  if (row.state === 'succeeded' || index < row.currentBatch) return 'done';
  if (index !== row.currentBatch) return 'pending';
  return row.batchStartedAt ? 'running' : 'pending';
}

function deviceStatus(row: DeviceRow): RolloutDeviceStatus {
  return {
    id: row.id,
    batch: row.batch,
    state: row.state,
    from: row.from,
    to: row.to,
    online: row.online,
    ...(row.reason ? { reason: row.reason } : {}),
    ...(row.hold ? { hold: row.hold } : {}),
    ...(row.accepted ? { accepted: true } : {}),
    ...(row.failureReason
      ? {
          failure: {
            reason: row.failureReason,
            ...(row.failureUnit ? { unit: row.failureUnit } : {}),
            journal: row.failureJournal ?? [],
          },
        }
      : {}),
  };
}
