import {
  resolveCount,
  type FailureReason,
  type RolloutSpec,
  type RolloutState,
} from '@podfleet/shared';
import { abortVerdict } from './policy/abort.js';
import { admit, describeHold, summarizeHolds, type AdmissionInput } from './policy/admit.js';
import type { PolicyDevice } from './policy/device.js';
import { batchKinds, effectiveSettings, type EffectiveSettings } from './policy/settings.js';
import {
  emptyBatchCounts,
  judgeBatch,
  judgeDevice,
  type BakeRecord,
  type BatchCounts,
  type ServiceObservation,
} from './policy/success.js';

export type DeviceRolloutState =
  | 'pending'
  | 'updating'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'reverting'
  | 'reverted'
  /** Offline when its turn came under `offlineDevices: defer`: updated when it returns. */
  | 'deferred';

/** A device's failure as structured, beside its one-line `reason`. */
export interface DeviceFailureRecord {
  reason: FailureReason;
  unit?: string;
  /** The unit's last journald lines, when the agent sent them. */
  journal: readonly string[];
}

/** One device's part in a rollout, as stored. Times are epoch milliseconds. */
export interface RolloutDevice {
  id: string;
  batch: number;
  from: string;
  to: string;
  state: DeviceRolloutState;
  reason?: string;
  /** When its manifest was pointed at `to` (or back at `from`, while reverting). */
  switchedAt?: number;
  /** The desired generation that carries `to` (known once the manifest is issued). */
  targetGeneration?: number;
  /** The desired generation that carries `from` again. */
  revertGeneration?: number;
  /** Its bake so far: when it was first seen ready, and what it said then. */
  bake?: BakeRecord;
  failure?: DeviceFailureRecord;
  /** A failure the operator resumed over: thresholds and abort criteria no longer count it. */
  accepted?: boolean;
  /** Why the policy holds it back now, as `rollout watch` shows it. */
  hold?: string;
}

/** What the device reports about the rollout's service, and its labels (windows, budgets). */
export interface DeviceObservation extends ServiceObservation {
  labels?: Readonly<Record<string, string>>;
}

export interface RolloutProgress {
  state: RolloutState;
  strategy: RolloutSpec['strategy'];
  batchCount: number;
  /** The batch being worked on; the ones before it succeeded. */
  currentBatch: number;
  /** When the current batch's first device started. */
  batchStartedAt?: number;
  /** When the batch before the current one succeeded: bakeBetweenBatches counts from it. */
  previousBatchDoneAt?: number;
  /** An approval after the previous batch holds the current one. */
  awaitingApproval: boolean;
  /** Batches after which an operator approved. */
  approvedBatches: number[];
  /** Why devices are held back, one line per reason with how many (the last tick's). */
  waiting: string[];
  reason?: string;
}

export type DeviceChange = Partial<Omit<RolloutDevice, 'id' | 'batch' | 'from' | 'to'>>;

export interface TickResult {
  progress: RolloutProgress;
  /** Devices whose stored part changed, with the new fields. */
  changes: Map<string, DeviceChange>;
  /** True when some device's manifest must change (pointed at `to`, or back at `from`). */
  manifestsChange: boolean;
  /** One line per thing that happened, for the live stream and the log. */
  happenings: string[];
}

/** States whose manifest changes when a device enters them. */
const SWITCHING: ReadonlySet<DeviceRolloutState> = new Set([
  'updating',
  'reverting',
  'failed',
  'skipped',
]);

/**
 * One step of a rollout, decided from what is stored and what devices report, and nothing else:
 * level-triggered, so a controller that restarts (or another one taking over) carries on from the
 * same state. Pure; the engine stores the result and reissues manifests.
 *
 * Each pass judges the devices that were switched (success needs the new generation, ready, and
 * still so without a restart after the policy's bake), then the abort criteria, then the current
 * batch as a whole (successThreshold, else maxFailures), and last admits the devices that may
 * start now: each batch is a quota that windows, budgets, the rate, approvals and offline devices
 * let through device by device (decision 006).
 */
export function tick(
  progress: RolloutProgress,
  devices: readonly RolloutDevice[],
  observations: ReadonlyMap<string, DeviceObservation>,
  now: number,
): TickResult {
  const result: TickResult = {
    progress: { ...progress },
    changes: new Map(),
    manifestsChange: false,
    happenings: [],
  };
  const change = changer(result);
  const all = devices.map((device) => ({ ...device }));
  const p = result.progress;
  const settings = effectiveSettings(p.strategy, batchKinds(p.batchCount, p.strategy.canary));

  for (const device of all) {
    const seen = observations.get(device.id);
    if (device.state === 'updating') judgeUpdate(device, seen, settings, now, change);
    else if (device.state === 'reverting')
      observeRevert(device, seen, p.strategy.healthTimeout * 1000, now, change);
    else if (device.state === 'succeeded' && inBakeBetweenBatches(p, device, settings, now))
      judgeUpdate(device, seen, settings, now, change);
  }

  if (p.state === 'pending') {
    p.state = 'running';
    result.happenings.push('rollout started');
  }
  if (p.state === 'rolling_back') {
    if (!all.some((d) => d.state === 'reverting')) {
      p.state = 'rolled_back';
      result.happenings.push('rolled back: every updated device runs its previous image again');
    }
    return result;
  }
  if (p.state !== 'running' && p.state !== 'paused') return result;
  if (p.state === 'running' && checkAbort(p, all, settings, now, change, result)) return result;
  if (p.state !== 'running') return result;

  const batchDevices = all.filter((d) => d.batch === p.currentBatch);
  const counts = batchCounts(batchDevices, observations);
  // Failures the operator accepted by resuming count as left out, not against the batch.
  const accepted = batchDevices.filter(isAcceptedFailure).length;
  counts.failed -= accepted;
  counts.skipped += accepted;
  const batch = judgeBatch(counts, settings.threshold);
  if (batch.outcome === 'failed') {
    const threshold = settings.threshold;
    const why =
      'successThreshold' in threshold
        ? `batch ${p.currentBatch}: ${batch.counts.failed} of ${batch.counted} devices failed, ${batch.needed} had to succeed (successThreshold ${threshold.successThreshold})`
        : failureSummary(p, all);
    failRollout(p, all, why, now, change, result);
    return result;
  }
  if (batch.outcome === 'succeeded') {
    result.happenings.push(
      `batch ${p.currentBatch} done: ${batch.counts.succeeded} of ${batch.counted} succeeded`,
    );
    if (p.currentBatch + 1 >= p.batchCount) {
      finish(p, all, now, change, result);
      return result;
    }
    p.currentBatch++;
    p.batchStartedAt = undefined;
    p.previousBatchDoneAt = now;
  }
  admitDevices(p, all, observations, settings, now, change, result);
  return result;
}

type Change = (device: RolloutDevice, fields: DeviceChange, happening?: string) => void;

/** A failure the operator resumed over: counted as left out, not against thresholds. */
function isAcceptedFailure(device: RolloutDevice): boolean {
  return device.state === 'failed' && device.accepted === true;
}

function changer(result: TickResult): Change {
  return (device, fields, happening) => {
    Object.assign(device, fields);
    result.changes.set(device.id, { ...result.changes.get(device.id), ...fields });
    if (fields.state !== undefined && SWITCHING.has(fields.state)) result.manifestsChange = true;
    if (happening) result.happenings.push(happening);
  };
}

/** Whether a succeeded device of the batch before is being watched through bakeBetweenBatches. */
function inBakeBetweenBatches(
  p: RolloutProgress,
  device: RolloutDevice,
  settings: EffectiveSettings,
  now: number,
): boolean {
  return (
    device.batch === p.currentBatch - 1 &&
    p.previousBatchDoneAt !== undefined &&
    now < p.previousBatchDoneAt + settings.bakeBetweenBatches * 1000
  );
}

/**
 * An updating device (or a succeeded one still watched) judged: succeeded once ready and baked;
 * failed with the agent's structured reason, or the controller's (start-timeout, unhealthy,
 * crashed-after-start); offline is never a failure (under `skip` it leaves the rollout).
 */
function judgeUpdate(
  device: RolloutDevice,
  seen: DeviceObservation | undefined,
  settings: EffectiveSettings,
  now: number,
  change: Change,
): void {
  const { verdict, bake } = judgeDevice(
    { ...device, bake: device.bake ?? {} },
    seen,
    settings.timing,
    now,
  );
  const fields: DeviceChange = bake ? { bake } : {};
  switch (verdict.status) {
    case 'succeeded':
      if (device.state !== 'succeeded')
        change(
          device,
          { ...fields, state: 'succeeded', reason: undefined },
          `${device.id} runs ${device.to}`,
        );
      return;
    case 'failed': {
      const failure: DeviceFailureRecord = {
        reason: verdict.reason,
        journal: verdict.journal ?? [],
      };
      if (verdict.unit !== undefined) failure.unit = verdict.unit;
      change(
        device,
        { ...fields, state: 'failed', reason: verdict.detail, failure },
        `${device.id} failed (${verdict.reason}): ${verdict.detail}`,
      );
      return;
    }
    case 'offline':
      if (device.state === 'updating' && settings.offlineDevices === 'skip') {
        change(
          device,
          { ...fields, state: 'skipped', reason: 'went offline during its update' },
          `${device.id} skipped: offline`,
        );
        return;
      }
      break;
  }
  if (bake) change(device, fields);
}

function observeRevert(
  device: RolloutDevice,
  seen: DeviceObservation | undefined,
  healthTimeoutMs: number,
  now: number,
  change: Change,
): void {
  if (device.revertGeneration === undefined || !seen) return;
  if (seen.appliedGeneration >= device.revertGeneration && seen.image === device.from) {
    change(device, { state: 'reverted' }, `${device.id} back on ${device.from}`);
    return;
  }
  const since = Math.max(device.switchedAt ?? now, seen.onlineSince ?? 0);
  if (seen.online && now - since > healthTimeoutMs) {
    change(
      device,
      { state: 'reverted', reason: 'previous image not confirmed within healthTimeout' },
      `${device.id}: revert not confirmed`,
    );
  }
}

/**
 * The policy's abort criteria when it has them, else the strategy's maxFailures over the whole
 * rollout (unless a successThreshold judges the batches instead). True when the rollout stopped.
 */
function checkAbort(
  p: RolloutProgress,
  all: RolloutDevice[],
  settings: EffectiveSettings,
  now: number,
  change: Change,
  result: TickResult,
): boolean {
  if (settings.abort) {
    const verdict = abortVerdict(settings.abort, all);
    if (!verdict.abort) return false;
    const revert = new Set(verdict.revert);
    for (const device of all) {
      if (verdict.cancel.includes(device.id))
        change(device, { state: 'skipped', reason: 'rollout aborted', hold: undefined });
    }
    if (revert.size > 0) {
      startRollback(p, all, `aborted: ${verdict.reason}`, now, change, result, revert);
    } else {
      p.state = 'aborted';
      p.reason = `aborted: ${verdict.reason}${verdict.onAbort === 'halt' ? ' (onAbort: halt)' : ''}`;
      result.happenings.push(p.reason);
    }
    p.waiting = [];
    return true;
  }
  if ('successThreshold' in settings.threshold) return false;
  const failed = all.filter((d) => d.state === 'failed' && !d.accepted).length;
  const limit = resolveCount(p.strategy.maxFailures, all.length);
  if (failed <= limit) return false;
  failRollout(p, all, failureSummary(p, all), now, change, result);
  return true;
}

/** `batch 0: 1 of 2 devices failed, 1 of 6 overall (maxFailures 0)`. */
function failureSummary(p: RolloutProgress, all: readonly RolloutDevice[]): string {
  const batch = all.filter((d) => d.batch === p.currentBatch);
  const failed = (devices: readonly RolloutDevice[]) =>
    devices.filter((d) => d.state === 'failed').length;
  return `batch ${p.currentBatch}: ${failed(batch)} of ${batch.length} devices failed, ${failed(all)} of ${all.length} overall (maxFailures ${p.strategy.maxFailures})`;
}

/** A failed batch or too many failures: roll back (autoRollback) or pause for the operator. */
function failRollout(
  p: RolloutProgress,
  all: RolloutDevice[],
  why: string,
  now: number,
  change: Change,
  result: TickResult,
): void {
  p.waiting = [];
  if (p.strategy.autoRollback) {
    startRollback(p, all, why, now, change, result);
    return;
  }
  p.state = 'paused';
  p.reason = `paused: ${why}`;
  result.happenings.push(p.reason);
}

/** The current batch's devices by where they stand, for judgeBatch. */
function batchCounts(
  devices: readonly RolloutDevice[],
  observations: ReadonlyMap<string, DeviceObservation>,
): BatchCounts {
  const counts = emptyBatchCounts();
  for (const device of devices) {
    const online = observations.get(device.id)?.online ?? false;
    switch (device.state) {
      case 'succeeded':
        counts.succeeded++;
        break;
      case 'failed':
        counts.failed++;
        break;
      case 'skipped':
      case 'reverting':
      case 'reverted':
        counts.skipped++;
        break;
      case 'deferred':
        counts.deferred++;
        break;
      // An updating device that went away is offline, not in flight: the batch can finish
      // without it when the threshold allows, and it carries on when it returns.
      case 'updating':
        if (online) counts.inFlight++;
        else counts.offline++;
        break;
      case 'pending':
        if (online) counts.held++;
        else counts.offline++;
        break;
    }
  }
  return counts;
}

/**
 * The last batch succeeded. Devices still away (deferred, or waited for and not needed) get the
 * new image when they return: their manifests are pointed at it now and wait for them, retained.
 */
function finish(
  p: RolloutProgress,
  all: RolloutDevice[],
  now: number,
  change: Change,
  result: TickResult,
): void {
  for (const device of all) {
    if (device.state === 'deferred' || device.state === 'pending') {
      change(device, {
        state: 'updating',
        switchedAt: now,
        hold: undefined,
        reason: 'offline when the rollout finished: gets the new image when it returns',
      });
    }
  }
  p.state = 'succeeded';
  p.reason = undefined;
  p.waiting = [];
  p.awaitingApproval = false;
  result.happenings.push('rollout succeeded');
}

/** Starts, skips or defers what the policy lets through now; the rest keep (or get) a hold. */
function admitDevices(
  p: RolloutProgress,
  all: RolloutDevice[],
  observations: ReadonlyMap<string, DeviceObservation>,
  settings: EffectiveSettings,
  now: number,
  change: Change,
  result: TickResult,
): void {
  const policyDevices: PolicyDevice[] = all.map((device) => {
    const seen = observations.get(device.id);
    const view: PolicyDevice = {
      id: device.id,
      batch: device.batch,
      state: device.state,
      online: seen?.online ?? false,
      labels: seen?.labels ?? {},
    };
    if (device.switchedAt !== undefined) view.switchedAt = device.switchedAt;
    return view;
  });
  const input: AdmissionInput = {
    now,
    devices: policyDevices,
    currentBatch: p.currentBatch,
    bakeBetweenBatches: settings.bakeBetweenBatches,
    approvalPoints: settings.approvalPoints,
    approved: new Set(p.approvedBatches),
    windows: settings.windows,
    rate: settings.rate,
    offlineDevices: settings.offlineDevices,
  };
  if (p.previousBatchDoneAt !== undefined) input.previousBatchDoneAt = p.previousBatchDoneAt;
  if (settings.budget) input.budget = settings.budget;
  const admission = admit(input);

  const byId = new Map(all.map((device) => [device.id, device]));
  let startedInBatch = 0;
  let carried = 0;
  for (const id of admission.start) {
    const device = byId.get(id)!;
    if (device.batch === p.currentBatch) startedInBatch++;
    else carried++;
    change(device, {
      state: 'updating',
      switchedAt: now,
      bake: {},
      hold: undefined,
      reason: undefined,
    });
  }
  for (const id of admission.skip)
    change(
      byId.get(id)!,
      { state: 'skipped', reason: 'offline when its turn came', hold: undefined },
      `${id} skipped: offline`,
    );
  for (const id of admission.defer)
    change(
      byId.get(id)!,
      {
        state: 'deferred',
        reason: 'offline when its turn came: updated when it returns',
        hold: undefined,
      },
      `${id} deferred: offline`,
    );
  for (const device of all) {
    const hold = admission.held.get(device.id);
    const line = hold ? describeHold(hold) : undefined;
    if (
      line !== device.hold &&
      (line !== undefined || device.state === 'pending' || device.state === 'deferred')
    )
      change(device, { hold: line });
  }

  if (startedInBatch > 0) {
    const size = all.filter((d) => d.batch === p.currentBatch).length;
    const first = p.batchStartedAt === undefined;
    if (first) p.batchStartedAt = now;
    const some = startedInBatch === size ? `${size}` : `${startedInBatch} of ${size}`;
    result.happenings.push(
      first
        ? `batch ${p.currentBatch} started: ${some} devices`
        : `batch ${p.currentBatch}: ${startedInBatch} more devices started`,
    );
  }
  if (carried > 0)
    result.happenings.push(
      `${carried} device${carried === 1 ? '' : 's'} of earlier batches started on their return`,
    );

  const gate = [...admission.held.values()].find((hold) => hold.kind === 'approval');
  const waitingFor = gate?.kind === 'approval' ? gate.afterBatch : undefined;
  if (waitingFor !== undefined && !p.awaitingApproval) {
    p.reason = `awaiting approval after batch ${waitingFor}${waitingFor === 0 && p.strategy.canary > 0 ? ' (the canary)' : ''}`;
    result.happenings.push(p.reason);
  } else if (waitingFor === undefined && p.awaitingApproval) {
    p.reason = undefined;
  }
  p.awaitingApproval = waitingFor !== undefined;
  // The stream says when a new reason to wait appears, not every time its count changes.
  const waiting = summarizeHolds(admission.held);
  const before = new Set(p.waiting.map(withoutCount));
  for (const line of waiting)
    if (!before.has(withoutCount(line))) result.happenings.push(`waiting: ${line}`);
  p.waiting = waiting;
}

/** `3 devices: window … closed until …` without its count. */
function withoutCount(line: string): string {
  return line.slice(line.indexOf(': ') + 2);
}

/** Points every device that got the new image back at its previous one. */
export function startRollback(
  progress: RolloutProgress,
  devices: RolloutDevice[],
  why: string,
  now: number,
  change: Change,
  result: { happenings: string[] },
  only?: ReadonlySet<string>,
): void {
  progress.state = 'rolling_back';
  progress.reason = `rolling back: ${why}`;
  progress.waiting = [];
  progress.awaitingApproval = false;
  result.happenings.push(progress.reason);
  for (const device of devices) {
    if (only && !only.has(device.id)) continue;
    if (device.state === 'updating' || device.state === 'succeeded') {
      change(device, {
        state: 'reverting',
        switchedAt: now,
        reason: device.state === 'updating' ? 'rolled back while updating' : 'rolled back',
      });
    }
  }
}

/** Which devices' manifests carry the rollout's image: those pointed at it and not back. */
export function carriesNewImage(state: DeviceRolloutState): boolean {
  return state === 'updating' || state === 'succeeded';
}

export type OperatorAction = 'pause' | 'resume' | 'abort' | 'approve';

/**
 * An operator's pause, resume (which accepts the failures so far, and approves a batch an
 * approval holds), approve (lets the batch after an approval point start) or abort (which rolls
 * back when autoRollback is on). Throws a one-line reason when the rollout is not in a state
 * that allows it.
 */
export function operate(
  progress: RolloutProgress,
  devices: readonly RolloutDevice[],
  action: OperatorAction,
  actor: string,
  now: number,
): TickResult {
  const result: TickResult = {
    progress: { ...progress },
    changes: new Map(),
    manifestsChange: false,
    happenings: [],
  };
  const p = result.progress;
  const allowed: Record<OperatorAction, RolloutState[]> = {
    pause: ['running', 'pending'],
    resume: ['paused'],
    abort: ['running', 'paused', 'pending'],
    approve: ['running', 'paused'],
  };
  if (!allowed[action].includes(p.state))
    throw new Error(`cannot ${action} a rollout that is ${p.state}`);
  if (action === 'approve' && !p.awaitingApproval)
    throw new Error(`rollout is not waiting for an approval (batch ${p.currentBatch} is current)`);
  const approve = () => {
    const batch = p.currentBatch - 1;
    p.approvedBatches = [...p.approvedBatches, batch];
    p.awaitingApproval = false;
    p.waiting = [];
    return `batch ${batch} approved by ${actor}`;
  };
  if (action === 'pause') {
    p.state = 'paused';
    p.reason = `paused by ${actor}`;
  } else if (action === 'approve') {
    p.reason = approve();
  } else if (action === 'resume') {
    p.state = 'running';
    // The failures so far, by device: a later one still counts, in whichever batch it happens.
    for (const device of devices)
      if (device.state === 'failed' && !device.accepted)
        result.changes.set(device.id, { accepted: true });
    p.reason = p.awaitingApproval ? approve() : undefined;
  } else if (p.strategy.autoRollback && devices.some((d) => carriesNewImage(d.state))) {
    const all = devices.map((d) => ({ ...d }));
    startRollback(p, all, `aborted by ${actor}`, now, changer(result), result);
    return result;
  } else {
    p.state = 'aborted';
    p.reason = `aborted by ${actor}`;
    p.waiting = [];
  }
  result.happenings.push(p.reason ?? `${action} by ${actor}`);
  return result;
}
