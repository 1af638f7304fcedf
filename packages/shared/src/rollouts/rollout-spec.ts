import { z } from 'zod';
import { parseImageReference } from '../spec/image.js';
import { duration } from '../spec/duration.js';
import { SERVICE_NAME } from '../spec/service-spec.js';
import { CountOrPercent } from './count-or-percent.js';
import { RolloutPolicy } from './rollout-policy.js';

export { CountOrPercent, resolveCount } from './count-or-percent.js';

export const RolloutStrategy = z.strictObject({
  /** Devices updated first, on their own, before any batch. */
  canary: z.number().int().min(0).default(0),
  batchSize: CountOrPercent.default('10%'),
  /** Failures in a batch beyond which the rollout pauses (or, with autoRollback, aborts). */
  maxFailures: CountOrPercent.default(0),
  healthTimeout: duration.default(300),
  pauseBetweenBatches: duration.default(0),
  autoRollback: z.boolean().default(true),
  offlineDevices: z.enum(['wait', 'skip']).default('wait'),
  approveAfterCanary: z.boolean().default(false),
  /** Budgets, windows, rate, approvals, abort (rollout-policy.ts). */
  policy: RolloutPolicy.optional(),
});

export const RolloutSpec = z
  .strictObject({
    service: z.string().regex(SERVICE_NAME, { message: 'not a service name' }),
    image: z
      .string()
      .refine((value) => parseImageReference(value) !== undefined, {
        message: 'not an image reference',
      })
      .optional(),
    revision: z.number().int().positive().optional(),
    targets: z
      .strictObject({
        groups: z.array(z.string().min(1)).default([]),
        selector: z.string().min(1).optional(),
      })
      .refine((targets) => targets.groups.length > 0 || targets.selector !== undefined, {
        message: 'name at least one group or a selector',
      }),
    strategy: RolloutStrategy.default(RolloutStrategy.parse({})),
    /** Pinned groups this rollout may change anyway; others keep their pin. */
    overridePins: z.array(z.string().min(1)).default([]),
  })
  .refine((spec) => (spec.image === undefined) !== (spec.revision === undefined), {
    message: 'give exactly one of image or revision',
    path: ['image'],
  });
export type RolloutSpec = z.output<typeof RolloutSpec>;
export type RolloutSpecInput = z.input<typeof RolloutSpec>;

export const ROLLOUT_STATES = [
  'pending', 'running', 'paused', 'succeeded', 'failed', 'aborted', 'rolling_back', 'rolled_back',
] as const; // prettier-ignore
export type RolloutState = (typeof ROLLOUT_STATES)[number];
