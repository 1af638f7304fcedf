import { RolloutSpec } from '@podfleet/shared';
import type { PrismaClient } from '../db/client.js';
import { emptyCounts, type RolloutBatchStatus, type RolloutStatus } from './status.js';

type Db = Pick<PrismaClient, 'rollout'>;

/** A rollout as operators see it: per batch and per device, with counts and reasons. */
export async function readStatus(db: Db, id: string): Promise<RolloutStatus | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const row = await db.rollout.findUnique({
    where: { id },
    include: {
      devices: {
        include: { device: { select: { online: true } } },
        orderBy: [{ batch: 'asc' }, { deviceId: 'asc' }],
      },
    },
  });
  if (!row) return undefined;
  const spec = RolloutSpec.parse(row.spec);
  const counts = { ...emptyCounts(), total: row.devices.length };
  const batches: RolloutBatchStatus[] = [];
  for (const d of row.devices) {
    let batch = batches[d.batch];
    if (!batch) {
      batch = batches[d.batch] = {
        index: d.batch,
        kind: d.batch === 0 && spec.strategy.canary > 0 ? 'canary' : 'batch',
        state:
          d.batch < row.currentBatch
            ? 'done'
            : d.batch === row.currentBatch && row.batchStartedAt
              ? 'running'
              : 'pending',
        counts: emptyCounts(),
        devices: [],
      };
    }
    const device = {
      id: d.deviceId,
      state: d.state,
      from: d.fromImage,
      to: d.toImage,
      online: d.device.online,
      ...(d.reason ? { reason: d.reason } : {}),
    };
    batch.devices.push(device);
    batch.counts[d.state]++;
    counts[d.state]++;
    // Offline devices still waiting are counted apart, as pending rather than failed.
    if (!d.device.online && (d.state === 'updating' || d.state === 'pending')) {
      batch.counts.offline++;
      counts.offline++;
    }
  }
  for (const batch of batches) {
    if (batch.index === row.currentBatch && row.batchFinishedAt) batch.state = 'done';
  }
  if (row.state === 'succeeded') for (const batch of batches) batch.state = 'done';
  return {
    id: row.id,
    service: row.service,
    targetImage: row.targetImage,
    state: row.state,
    ...(row.reason ? { reason: row.reason } : {}),
    spec,
    currentBatch: row.currentBatch,
    awaitingApproval: row.awaitingApproval,
    createdBy: row.createdBy,
    createdAt: row.createdAt.toISOString(),
    ...(row.finishedAt ? { finishedAt: row.finishedAt.toISOString() } : {}),
    counts,
    batches: batches.filter(Boolean),
    excluded: row.excluded as { id: string; reason: string }[],
  };
}
