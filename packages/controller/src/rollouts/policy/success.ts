import { resolveCount, type CountOrPercent, type FailureReason } from '@podfleet/shared';
import type { PolicyDeviceState } from './device.js';

/** What a device reports about the rollout's service (observations.ts gathers it). */
export interface ServiceObservation {
  online: boolean;
  /** When it last came online: healthTimeout counts from then after an absence. */
  onlineSince?: number;
  appliedGeneration: number;
  image?: string;
  ready?: boolean;
  /** When the unit last entered active (systemd's ActiveEnterTimestamp), if the agent says. */
  activeSince?: number;
  /** The unit's restart count (systemd's NRestarts), if the agent says. */
  restarts?: number;
  /**
   * When a controller received the state report these come from, on its clock (epoch ms): never
   * the device's reportedAt, since a device's clock may jump.
   */
  reportedAt?: number;
  /** Failures of the service the agent reported, with the generation they were for. */
  failures: readonly ServiceFailure[];
}

/** A failure of the service the agent reported for a generation, as structured as it said. */
export interface ServiceFailure {
  generation: number;
  reason: FailureReason;
  detail?: string;
  unit?: string;
  /** The unit's last journald lines, when the agent sent them. */
  journal?: readonly string[];
}

/** What the controller remembers about a device's bake between passes (stored per device). */
export interface BakeRecord {
  /** When the controller first saw it ready on the new generation. */
  readySeenAt?: number;
  /** Its restart count then. */
  restartsAtReady?: number;
  /** The unit's activeSince then: another value later means it restarted. */
  activeSinceAtReady?: number;
  /** When the device made that report, on its clock: the bake ends with a report `bake` later. */
  reportAtReady?: number;
}

export interface BakingDevice {
  state: PolicyDeviceState;
  to: string;
  targetGeneration?: number;
  switchedAt?: number;
  bake: BakeRecord;
}

export type DeviceVerdict =
  /** Its manifest is not issued yet, or nothing is known about it. */
  | { status: 'waiting' }
  | { status: 'applying' }
  | { status: 'offline' }
  | { status: 'baking'; until: number }
  | { status: 'succeeded' }
  | {
      status: 'failed';
      reason: FailureReason;
      detail: string;
      unit?: string;
      journal?: readonly string[];
    };

export interface VerdictTiming {
  /** Seconds a device must stay ready, active and unrestarted (policy.bake). */
  bake: number;
  /** Seconds it may take to run the new generation and be ready (strategy.healthTimeout). */
  healthTimeout: number;
}

/**
 * One device of the rollout judged: it succeeds when it applied the new generation, runs the new
 * image, is ready, and stays so, active and without a restart, for `bake` (on the controller's
 * clock, from when it first saw it ready). A failure the agent reports for the generation fails
 * it with the agent's reason; a restart or a lost readiness during the bake fails it as
 * crashed-after-start or unhealthy; no readiness within healthTimeout as start-timeout. An offline device is offline, never failed for it; its bake starts over when
 * it returns. Also judges `succeeded` devices, for bakeBetweenBatches: a later failure shows.
 * Returns the bake record to store when it changed.
 */
export function judgeDevice(
  device: BakingDevice,
  seen: ServiceObservation | undefined,
  timing: VerdictTiming,
  now: number,
): { verdict: DeviceVerdict; bake?: BakeRecord } {
  const target = device.targetGeneration;
  if (target === undefined || !seen) return { verdict: { status: 'waiting' } };
  const failure = seen.failures.find((f) => f.generation >= target);
  if (failure) {
    const { reason, unit, journal } = failure;
    const verdict: DeviceVerdict = { status: 'failed', reason, detail: failure.detail ?? reason };
    if (unit !== undefined) verdict.unit = unit;
    if (journal !== undefined) verdict.journal = journal;
    return { verdict };
  }
  const record = device.bake;
  if (!seen.online) {
    const verdict: DeviceVerdict = { status: 'offline' };
    return record.readySeenAt === undefined ? { verdict } : { verdict, bake: {} };
  }
  const runsIt = seen.appliedGeneration >= target && seen.image === device.to;
  if (record.readySeenAt !== undefined) {
    // Compared with what the device said at the first sighting, never with the controller's clock:
    // a device's clock may be off.
    const restarted =
      (seen.restarts !== undefined &&
        record.restartsAtReady !== undefined &&
        seen.restarts > record.restartsAtReady) ||
      (seen.activeSince !== undefined &&
        record.activeSinceAtReady !== undefined &&
        seen.activeSince !== record.activeSinceAtReady);
    if (restarted) return failed('crashed-after-start', 'restarted during its bake', device.state);
    if (!runsIt || !seen.ready)
      return failed('unhealthy', 'not ready during its bake', device.state);
    return { verdict: baked(record, seen, timing, now) };
  }
  if (runsIt && seen.ready) {
    const bake: BakeRecord = { readySeenAt: now };
    if (seen.restarts !== undefined) bake.restartsAtReady = seen.restarts;
    if (seen.activeSince !== undefined) bake.activeSinceAtReady = seen.activeSince;
    if (seen.reportedAt !== undefined) bake.reportAtReady = seen.reportedAt;
    return { verdict: baked(bake, seen, timing, now), bake };
  }
  const from = Math.max(device.switchedAt ?? now, seen.onlineSince ?? 0);
  if (now - from > timing.healthTimeout * 1000)
    return failed(
      'start-timeout',
      `not running ${device.to} and ready within healthTimeout (${timing.healthTimeout}s)`,
      device.state,
    );
  return { verdict: { status: 'applying' } };
}

/**
 * Succeeded once `bake` passed on the controller's clock AND the device said it is still so in a
 * report received `bake` after the one it was first seen ready in (receive times, by the
 * controllers' clocks): a crash near the end of the bake is not missed for want of a report.
 */
function baked(
  record: BakeRecord,
  seen: ServiceObservation,
  timing: VerdictTiming,
  now: number,
): DeviceVerdict {
  const until = record.readySeenAt! + timing.bake * 1000;
  const reportedAfter =
    timing.bake === 0 ||
    record.reportAtReady === undefined ||
    seen.reportedAt === undefined ||
    seen.reportedAt >= record.reportAtReady + timing.bake * 1000;
  return now >= until && reportedAfter ? { status: 'succeeded' } : { status: 'baking', until };
}

function failed(
  reason: FailureReason,
  detail: string,
  state: PolicyDeviceState,
): { verdict: DeviceVerdict } {
  const after = state === 'succeeded' ? `${detail} (after it had succeeded)` : detail;
  return { verdict: { status: 'failed', reason, detail: after } };
}

/** A batch's devices by where they stand; `held` ones the policy has not started yet. */
export interface BatchCounts {
  succeeded: number;
  failed: number;
  /** Updating (applying or baking). */
  inFlight: number;
  /** Not started yet, online (held by window, budget, rate, approval). */
  held: number;
  /** Not finished and offline: counted as offline, never as failed or pending. */
  offline: number;
  skipped: number;
  /** Offline when their turn came under `defer`: outside the batch count. */
  deferred: number;
}

export function emptyBatchCounts(): BatchCounts {
  return { succeeded: 0, failed: 0, inFlight: 0, held: 0, offline: 0, skipped: 0, deferred: 0 };
}

export interface BatchVerdict {
  outcome: 'running' | 'succeeded' | 'failed';
  /** Devices the threshold is taken of: all but skipped and deferred ones. */
  counted: number;
  needed: number;
  counts: BatchCounts;
}

/**
 * A batch succeeds once `needed` of its counted devices succeeded and none is still in flight
 * (so its result is final); it fails once so many failed that `needed` is out of reach. Offline
 * devices under `wait` stay counted: the batch waits for them only if the threshold needs them.
 */
export function judgeBatch(counts: BatchCounts, threshold: Threshold): BatchVerdict {
  const counted = counts.succeeded + counts.failed + counts.inFlight + counts.held + counts.offline;
  const needed = neededSuccesses(counted, threshold);
  let outcome: BatchVerdict['outcome'] = 'running';
  if (counts.failed > counted - needed) outcome = 'failed';
  else if (counts.succeeded >= needed && counts.inFlight === 0) outcome = 'succeeded';
  return { outcome, counted, needed, counts };
}

/** successThreshold when the policy gives one, else all but the strategy's maxFailures. */
export type Threshold = { successThreshold: CountOrPercent } | { maxFailures: CountOrPercent };

export function neededSuccesses(counted: number, threshold: Threshold): number {
  if ('successThreshold' in threshold) return resolveCount(threshold.successThreshold, counted);
  return counted - resolveCount(threshold.maxFailures, counted);
}
