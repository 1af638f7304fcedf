import { z } from 'zod';
import { DeviceFailure, ROLLOUT_STATES, RolloutSpec, SERVICE_NAME } from '@podfleet/shared';
import { ComplianceState } from '../compliance/compliance.js';
import { PageQuery } from '../http/pages.js';

const DeviceState = z.enum([
  'pending',
  'updating',
  'succeeded',
  'failed',
  'skipped',
  'reverting',
  'reverted',
  'deferred',
]);
const Counts = z.object({
  pending: z.number(),
  updating: z.number(),
  succeeded: z.number(),
  failed: z.number(),
  skipped: z.number(),
  reverting: z.number(),
  reverted: z.number(),
  deferred: z.number(),
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
  /** Why the policy holds it back now (window, budget, rate, approval, bake, offline). */
  hold: z.string().optional(),
  failure: DeviceFailure.optional(),
  /** A failure an operator resumed over: thresholds and abort criteria no longer count it. */
  accepted: z.boolean().optional(),
  /** The device's compliance now (decision 012); in the device listing, not in the status. */
  compliance: ComplianceState.optional(),
});

// Strict, as every listing's querystring: a misspelt filter (`?stat=failed`) is a 400, not ignored.
export const RolloutDeviceQuery = z.strictObject({
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
  /** Why devices are held back, one line per reason with how many: window, budget, rate, … */
  waiting: z.array(z.string()),
  /** Batches after which an operator approved. */
  approvedBatches: z.array(z.number()),
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
      /** What holds the batch on its own: approval, bake, when its windows open. */
      forecast: z.array(z.string()),
    }),
  ),
  excluded: z.array(z.object({ id: z.string(), reason: z.string() })),
});

export const RolloutBody = z.object({ spec: RolloutSpec });
export const RolloutParams = z.object({ id: z.uuid({ message: 'not a rollout id' }) });
export const RolloutAction = z.object({
  id: z.uuid({ message: 'not a rollout id' }),
  action: z.enum(['pause', 'resume', 'abort', 'approve']),
});
export const RolloutQuery = z.strictObject({
  service: z.string().regex(SERVICE_NAME, { message: 'not a service name' }).optional(),
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
