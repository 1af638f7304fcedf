import { z } from 'zod';
import { parseImageReference } from '../spec/image.js';
import { specDuration } from '../spec/duration.js';
import { SERVICE_NAME } from '../spec/service-spec.js';
import { CountOrPercent, PositiveCountOrPercent } from './count-or-percent.js';
import { RolloutPolicy } from './rollout-policy.js';

export {
  CountOrPercent,
  Percent,
  PositiveCountOrPercent,
  resolveCount,
} from './count-or-percent.js';

export const RolloutStrategy = z.strictObject({
  /**
   * Devices updated first, on their own, before any batch; fewer than the devices the rollout
   * changes (the engine checks once it resolved the targets).
   */
  canary: z.number().int().min(0).default(0),
  /** At most this many devices per batch; a count above the devices left makes one batch. */
  batchSize: PositiveCountOrPercent.default('10%'),
  /** Failures in a batch beyond which the rollout pauses (or, with autoRollback, aborts). */
  maxFailures: CountOrPercent.default(0),
  healthTimeout: specDuration.default(300),
  pauseBetweenBatches: specDuration.default(0),
  autoRollback: z.boolean().default(true),
  offlineDevices: z.enum(['wait', 'skip']).default('wait'),
  approveAfterCanary: z.boolean().default(false),
  /** Budgets, windows, rate, approvals, abort (rollout-policy.ts). */
  policy: RolloutPolicy.optional(),
});

/**
 * A rollout moves devices to one version: its image names a tag or a digest. A bare name (`img`)
 * is an image reference, and a service spec may use one as Podman does (`:latest`, short names
 * through registries.conf), but as a rollout target it names no version, only whatever `latest`
 * is when each device pulls, and is far more often a slip than an intent: `img:latest` says it.
 */
function imageOfRollout(value: string, ctx: z.RefinementCtx): void {
  const reference = parseImageReference(value);
  if (!reference) ctx.addIssue({ code: 'custom', message: 'not an image reference' });
  else if (!reference.tag && !reference.digest)
    ctx.addIssue({
      code: 'custom',
      message: `names no version: give a tag or a digest (${value}:2, ${value}@sha256:…)`,
    });
}

export const RolloutSpec = z
  .strictObject({
    service: z.string().regex(SERVICE_NAME, { message: 'not a service name' }),
    image: z.string().superRefine(imageOfRollout).optional(),
    // Stored in a Postgres integer column.
    revision: z.number().int().positive().max(2_147_483_647).optional(),
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

/**
 * A spec as the controller stored it when the rollout started (RolloutSpec's output). Bounds added
 * since are checked when a rollout starts; a rollout already running keeps the spec it started with.
 */
export function storedRolloutSpec(stored: unknown): RolloutSpec {
  const parsed = RolloutSpec.safeParse(stored);
  return parsed.success ? parsed.data : (stored as RolloutSpec);
}

export const ROLLOUT_STATES = [
  'pending', 'running', 'paused', 'succeeded', 'failed', 'aborted', 'rolling_back', 'rolled_back',
] as const; // prettier-ignore
export type RolloutState = (typeof ROLLOUT_STATES)[number];
