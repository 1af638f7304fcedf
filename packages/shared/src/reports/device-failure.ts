import { z } from 'zod';

/** Why a device failed its update, as the agent (or the controller's timeout) says. */
export const FAILURE_REASONS = [
  'pull-failed', 'start-timeout', 'unhealthy', 'crashed-after-start', 'rolled-back', 'rejected-manifest',
] as const; // prettier-ignore
export const FailureReason = z.enum(FAILURE_REASONS);
export type FailureReason = z.infer<typeof FailureReason>;

/** One device's failure for one unit, with the unit's last journald lines. */
export const DeviceFailure = z.strictObject({
  reason: FailureReason,
  unit: z.string().min(1).optional(),
  detail: z.string().optional(),
  journal: z.array(z.string()).max(50).default([]),
});
export type DeviceFailure = z.output<typeof DeviceFailure>;
