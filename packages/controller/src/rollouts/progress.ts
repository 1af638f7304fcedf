import { resolveCount, type RolloutState, type RolloutSpec } from '@podfleet/shared';

export type DeviceRolloutState =
  'pending' | 'updating' | 'succeeded' | 'failed' | 'skipped' | 'reverting' | 'reverted';

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
}

/** What the device reports about the rollout's service. */
export interface DeviceObservation {
  online: boolean;
  /** When it last came online: healthTimeout counts from then after an absence. */
  onlineSince?: number;
  appliedGeneration: number;
  /** The service's image and readiness in its last state report. */
  image?: string;
  ready?: boolean;
  /** Rollbacks and failed applies of the service the device reported, with their generation. */
  failures: { generation: number; reason: string }[];
}

export interface RolloutProgress {
  state: RolloutState;
  strategy: RolloutSpec['strategy'];
  batchCount: number;
  currentBatch: number;
  batchStartedAt?: number;
  batchFinishedAt?: number;
  /** Failures the operator accepted by resuming; thresholds count the ones after. */
  acceptedFailures: number;
  awaitingApproval: boolean;
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

const TERMINAL: ReadonlySet<DeviceRolloutState> = new Set([
  'succeeded',
  'failed',
  'skipped',
  'reverted',
]);

/**
 * One step of a rollout, decided from what is stored and what devices report, and nothing else:
 * level-triggered, so a controller that restarts (or another one taking over) carries on from the
 * same state. Pure; the engine stores the result and reissues manifests.
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
  const current = new Map(devices.map((device) => [device.id, { ...device }]));
  const change = (device: RolloutDevice, fields: DeviceChange, happening?: string) => {
    Object.assign(device, fields);
    result.changes.set(device.id, { ...result.changes.get(device.id), ...fields });
    if (
      'state' in fields &&
      (fields.state === 'updating' ||
        fields.state === 'reverting' ||
        fields.state === 'failed' ||
        fields.state === 'skipped')
    ) {
      result.manifestsChange = true;
    }
    if (happening) result.happenings.push(happening);
  };
  const all = [...current.values()];
  const strategy = progress.strategy;
  const healthTimeoutMs = strategy.healthTimeout * 1000;

  // Devices that were pointed at the new image: succeeded, failed, or still waiting.
  for (const device of all) {
    const seen = observations.get(device.id);
    if (device.state === 'updating')
      observeUpdate(device, seen, strategy, healthTimeoutMs, now, change);
    else if (device.state === 'reverting')
      observeRevert(device, seen, healthTimeoutMs, now, change);
  }

  const p = result.progress;
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

  const failed = all.filter((d) => d.state === 'failed').length;
  const batchDevices = all.filter((d) => d.batch === p.currentBatch);
  const batchFailed = batchDevices.filter((d) => d.state === 'failed').length;
  const total = all.length;
  const overallLimit = resolveCount(strategy.maxFailures, total);
  const batchLimit = resolveCount(strategy.maxFailures, batchDevices.length);
  // Failures the operator accepted (by resuming) no longer count against either limit.
  const counted = failed - p.acceptedFailures;
  const batchCounted = Math.max(0, batchFailed - p.acceptedFailures);
  if (p.state === 'running' && (counted > overallLimit || batchCounted > batchLimit)) {
    const why = `batch ${p.currentBatch}: ${batchFailed} of ${batchDevices.length} devices failed, ${failed} of ${total} overall (maxFailures ${strategy.maxFailures})`;
    if (strategy.autoRollback) startRollback(p, all, why, now, change, result);
    else {
      p.state = 'paused';
      p.reason = `paused: ${why}`;
      result.happenings.push(p.reason);
    }
    return result;
  }
  if (p.state !== 'running') return result;

  if (p.batchStartedAt === undefined) {
    startBatch(p, batchDevices, observations, strategy, now, change);
    result.happenings.push(`batch ${p.currentBatch} started: ${batchDevices.length} devices`);
    return result;
  }
  if (!batchDevices.every((d) => TERMINAL.has(d.state))) return result;
  if (p.batchFinishedAt === undefined) {
    p.batchFinishedAt = now;
    const ok = batchDevices.filter((d) => d.state === 'succeeded').length;
    result.happenings.push(
      `batch ${p.currentBatch} done: ${ok} of ${batchDevices.length} succeeded`,
    );
    if (
      p.currentBatch === 0 &&
      strategy.canary > 0 &&
      strategy.approveAfterCanary &&
      p.currentBatch + 1 < p.batchCount
    ) {
      p.state = 'paused';
      p.awaitingApproval = true;
      p.reason = 'awaiting approval after the canary';
      result.happenings.push(p.reason);
      return result;
    }
  }
  if (p.currentBatch + 1 >= p.batchCount) {
    p.state = 'succeeded';
    p.reason = undefined;
    result.happenings.push('rollout succeeded');
    return result;
  }
  if (now < p.batchFinishedAt + strategy.pauseBetweenBatches * 1000) return result;
  p.currentBatch++;
  p.batchStartedAt = undefined;
  p.batchFinishedAt = undefined;
  const next = all.filter((d) => d.batch === p.currentBatch);
  startBatch(p, next, observations, strategy, now, change);
  result.happenings.push(`batch ${p.currentBatch} started: ${next.length} devices`);
  return result;
}

type Change = (device: RolloutDevice, fields: DeviceChange, happening?: string) => void;

function observeUpdate(
  device: RolloutDevice,
  seen: DeviceObservation | undefined,
  strategy: RolloutSpec['strategy'],
  healthTimeoutMs: number,
  now: number,
  change: Change,
): void {
  if (device.targetGeneration === undefined || !seen) return; // manifest not issued yet
  const failure = seen.failures.find((f) => f.generation >= device.targetGeneration!);
  if (failure) {
    change(
      device,
      { state: 'failed', reason: failure.reason },
      `${device.id} failed: ${failure.reason}`,
    );
    return;
  }
  if (seen.appliedGeneration >= device.targetGeneration && seen.image === device.to && seen.ready) {
    change(device, { state: 'succeeded', reason: undefined }, `${device.id} runs ${device.to}`);
    return;
  }
  if (!seen.online) {
    if (strategy.offlineDevices === 'skip')
      change(
        device,
        { state: 'skipped', reason: 'went offline during its update' },
        `${device.id} skipped: offline`,
      );
    return;
  }
  const since = Math.max(device.switchedAt ?? now, seen.onlineSince ?? 0);
  if (now - since > healthTimeoutMs) {
    const reason = `not running ${device.to} and ready within healthTimeout (${strategy.healthTimeout}s)`;
    change(device, { state: 'failed', reason }, `${device.id} failed: ${reason}`);
  }
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

function startBatch(
  progress: RolloutProgress,
  devices: RolloutDevice[],
  observations: ReadonlyMap<string, DeviceObservation>,
  strategy: RolloutSpec['strategy'],
  now: number,
  change: Change,
): void {
  progress.batchStartedAt = now;
  for (const device of devices) {
    if (device.state !== 'pending') continue;
    const online = observations.get(device.id)?.online ?? false;
    // A device that is offline still gets its manifest (retained); `wait` counts it pending until
    // healthTimeout after it returns, `skip` leaves it out.
    if (!online && strategy.offlineDevices === 'skip') {
      change(
        device,
        { state: 'skipped', reason: 'offline when its batch started' },
        `${device.id} skipped: offline`,
      );
    } else {
      change(device, { state: 'updating', switchedAt: now });
    }
  }
}

/** Points every device that got the new image back at its previous one. */
export function startRollback(
  progress: RolloutProgress,
  devices: RolloutDevice[],
  why: string,
  now: number,
  change: Change,
  result: { happenings: string[] },
): void {
  progress.state = 'rolling_back';
  progress.reason = `rolling back: ${why}`;
  result.happenings.push(progress.reason);
  for (const device of devices) {
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

export type OperatorAction = 'pause' | 'resume' | 'abort';

/**
 * An operator's pause, resume (which also approves after the canary, and accepts the failures so
 * far) or abort (which rolls back when autoRollback is on). Throws a one-line reason when the
 * rollout is not in a state that allows it.
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
  };
  if (!allowed[action].includes(p.state))
    throw new Error(`cannot ${action} a rollout that is ${p.state}`);
  if (action === 'pause') {
    p.state = 'paused';
    p.reason = `paused by ${actor}`;
  } else if (action === 'resume') {
    p.state = 'running';
    p.acceptedFailures = devices.filter((d) => d.state === 'failed').length;
    p.reason = p.awaitingApproval ? `approved by ${actor}` : undefined;
    p.awaitingApproval = false;
  } else if (p.strategy.autoRollback && devices.some((d) => carriesNewImage(d.state))) {
    const all = devices.map((d) => ({ ...d }));
    const change: Change = (device, fields) => {
      Object.assign(device, fields);
      result.changes.set(device.id, { ...result.changes.get(device.id), ...fields });
      result.manifestsChange = true;
    };
    startRollback(p, all, `aborted by ${actor}`, now, change, result);
    return result;
  } else {
    p.state = 'aborted';
    p.reason = `aborted by ${actor}`;
  }
  result.happenings.push(p.reason ?? `${action} by ${actor}`);
  return result;
}
