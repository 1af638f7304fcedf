import { z } from 'zod';
import { ROLLOUT_STATES, RolloutSpec } from '@podfleet/shared';
import { PageQuery } from '../http/pages.js';

const DeviceState = z.enum([
  'pending',
  'updating',
  'succeeded',
  'failed',
  'skipped',
  'reverting',
  'reverted',
]);
const Counts = z.object({
  pending: z.number(),
  updating: z.number(),
  succeeded: z.number(),
  failed: z.number(),
  skipped: z.number(),
  reverting: z.number(),
  reverted: z.number(),
  offline: z.number(),
});

export const RolloutDeviceView = z.object({
  id: z.string(),
  batch: z.number(),
  state: DeviceState,
  from: z.string(),
  to: z.string(),
  reason: z.string().optional(),
  online: z.boolean(),
});

export const RolloutDeviceQuery = z.object({
  batch: z.coerce.number().int().min(0).optional(),
  state: DeviceState.optional(),
  ...PageQuery,
});

export const RolloutStatusView = z.object({
  id: z.string(),
  service: z.string(),
  targetImage: z.string(),
  state: z.enum(ROLLOUT_STATES),
  reason: z.string().optional(),
  /** The spec as stored (durations in seconds); not re-validated on the way out. */
  spec: z.looseObject({ service: z.string() }),
  currentBatch: z.number(),
  awaitingApproval: z.boolean(),
  createdBy: z.string(),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
  counts: Counts.extend({ total: z.number() }),
  batches: z.array(
    z.object({
      index: z.number(),
      kind: z.enum(['canary', 'batch']),
      state: z.enum(['pending', 'running', 'done']),
      total: z.number(),
      counts: Counts,
    }),
  ),
  /** The first failed devices (by batch and id); counts.failed says how many there are. */
  failures: z.array(RolloutDeviceView),
  excluded: z.array(z.object({ id: z.string(), reason: z.string() })),
});

export const PlanView = z.object({
  service: z.string(),
  targetImage: z.string(),
  total: z.number(),
  batches: z.array(
    z.object({
      index: z.number(),
      kind: z.enum(['canary', 'batch']),
      devices: z.array(
        z.object({ id: z.string(), from: z.string(), to: z.string(), overGroupPin: z.boolean() }),
      ),
    }),
  ),
  excluded: z.array(z.object({ id: z.string(), reason: z.string() })),
});

export const RolloutBody = z.object({ spec: RolloutSpec });
export const RolloutParams = z.object({ id: z.uuid({ message: 'not a rollout id' }) });
export const RolloutAction = z.object({
  id: z.uuid({ message: 'not a rollout id' }),
  action: z.enum(['pause', 'resume', 'abort']),
});
export const RolloutQuery = z.object({
  service: z.string().optional(),
  state: z.enum(ROLLOUT_STATES).optional(),
  ...PageQuery,
});

export const RolloutSummary = z.object({
  id: z.string(),
  service: z.string(),
  targetImage: z.string(),
  state: z.enum(ROLLOUT_STATES),
  reason: z.string().optional(),
  createdBy: z.string(),
  createdAt: z.string(),
  finishedAt: z.string().optional(),
});
