import { z } from 'zod';
import { DEVICE_LIMITS, deviceText } from './limits.js';

/** Why a device failed its update, as the agent (or the controller's timeout) says. */
export const FAILURE_REASONS = [
  'pull-failed', 'start-timeout', 'unhealthy', 'crashed-after-start', 'rolled-back', 'rejected-manifest',
] as const; // prettier-ignore
export const FailureReason = z.enum(FAILURE_REASONS);
export type FailureReason = z.infer<typeof FailureReason>;

/** One device's failure for one unit, with the unit's last journald lines. */
export const DeviceFailure = z.strictObject({
  reason: FailureReason,
  unit: deviceText(DEVICE_LIMITS.name).min(1).optional(),
  detail: deviceText(DEVICE_LIMITS.text).optional(),
  journal: z
    .array(deviceText(DEVICE_LIMITS.journalLine))
    .max(DEVICE_LIMITS.journalLines)
    .default([]),
});
export type DeviceFailure = z.output<typeof DeviceFailure>;
