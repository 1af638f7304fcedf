import type { AbortCriteria } from '@podfleet/shared';
import type { PolicyDeviceState } from './device.js';

export interface AbortDevice {
  id: string;
  state: PolicyDeviceState;
  /** A failure the operator resumed over. */
  accepted?: boolean;
}

export type AbortVerdict =
  | { abort: false; finished: number; failed: number }
  | {
      abort: true;
      finished: number;
      failed: number;
      reason: string;
      onAbort: AbortCriteria['onAbort'];
      /** Devices to re-pin to their previous digest (onAbort revert); empty for halt. */
      revert: string[];
      /** Devices that never got the new image: they leave the rollout untouched. */
      cancel: string[];
    };

/**
 * Whether the abort criteria hold: once `minDevices` devices finished (succeeded or failed; fewer
 * when the rollout has fewer), failures ≥ `failures` or failed/finished ≥ `failureRate`. Exactly
 * at a threshold aborts. Accepted failures (the operator resumed over them) count for neither.
 */
export function abortVerdict(
  criteria: AbortCriteria,
  devices: readonly AbortDevice[],
): AbortVerdict {
  let succeeded = 0;
  let failed = 0;
  let eligible = 0;
  for (const device of devices) {
    if (device.state === 'failed' && device.accepted) continue;
    if (device.state === 'succeeded') succeeded++;
    if (device.state === 'failed') failed++;
    if (device.state !== 'skipped' && device.state !== 'deferred') eligible++;
  }
  const finished = succeeded + failed;
  const quiet = { abort: false as const, finished, failed };
  const needed = Math.min(criteria.minDevices, Math.max(1, eligible));
  if (finished < needed || failed === 0) return quiet;
  let why: string | undefined;
  if (criteria.failures !== undefined && failed >= criteria.failures) {
    why = `failures ≥ ${criteria.failures}`;
  } else if (criteria.failureRate !== undefined) {
    const rate = Number.parseFloat(criteria.failureRate);
    // failed/finished ≥ rate%, multiplied out; the epsilon keeps "exactly at" exact in floats.
    if (failed * 100 + 1e-9 >= rate * finished) why = `failure rate ≥ ${criteria.failureRate}`;
  }
  if (why === undefined) return quiet;
  const revert: string[] = [];
  const cancel: string[] = [];
  for (const device of devices) {
    if (device.state === 'updating' || device.state === 'succeeded') revert.push(device.id);
    else if (device.state === 'pending' || device.state === 'deferred') cancel.push(device.id);
  }
  return {
    ...quiet,
    abort: true,
    reason: `${failed} of ${finished} finished devices failed (${why}, after at least ${needed})`,
    onAbort: criteria.onAbort,
    revert: criteria.onAbort === 'revert' ? revert : [],
    cancel,
  };
}
