import { describe, expect, it } from 'vitest';
import {
  judgeBatch,
  judgeDevice,
  neededSuccesses,
  type BakingDevice,
  type BatchCounts,
  type ServiceObservation,
} from './success.js';

const timing = { bake: 60, healthTimeout: 300 };
const T0 = 1_000_000;

function updating(bake: BakingDevice['bake'] = {}): BakingDevice {
  return { state: 'updating', to: 'web@sha256:new', targetGeneration: 7, switchedAt: T0, bake };
}

function seen(fields: Partial<ServiceObservation> = {}): ServiceObservation {
  return {
    online: true,
    appliedGeneration: 7,
    image: 'web@sha256:new',
    ready: true,
    failures: [],
    ...fields,
  };
}

describe('judgeDevice', () => {
  it('waits while the manifest is not issued or nothing is known', () => {
    expect(judgeDevice({ ...updating(), targetGeneration: undefined }, seen(), timing, T0)).toEqual(
      {
        verdict: { status: 'waiting' },
      },
    );
    expect(judgeDevice(updating(), undefined, timing, T0).verdict.status).toBe('waiting');
  });

  it('applying until the new generation runs and is ready', () => {
    const verdict = judgeDevice(updating(), seen({ appliedGeneration: 6 }), timing, T0 + 5_000);
    expect(verdict).toEqual({ verdict: { status: 'applying' } });
    expect(judgeDevice(updating(), seen({ ready: false }), timing, T0).verdict.status).toBe(
      'applying',
    );
    expect(
      judgeDevice(updating(), seen({ image: 'web@sha256:old' }), timing, T0).verdict.status,
    ).toBe('applying');
  });

  it('bakes from the first sighting of ready, then succeeds after bake', () => {
    const first = judgeDevice(
      updating(),
      seen({ restarts: 0, activeSince: 5 }),
      timing,
      T0 + 10_000,
    );
    expect(first).toEqual({
      verdict: { status: 'baking', until: T0 + 70_000 },
      bake: { readySeenAt: T0 + 10_000, restartsAtReady: 0, activeSinceAtReady: 5 },
    });
    const record = first.bake!;
    const mid = judgeDevice(
      updating(record),
      seen({ restarts: 0, activeSince: 5 }),
      timing,
      T0 + 69_999,
    );
    expect(mid).toEqual({ verdict: { status: 'baking', until: T0 + 70_000 } });
    const done = judgeDevice(
      updating(record),
      seen({ restarts: 0, activeSince: 5 }),
      timing,
      T0 + 70_000,
    );
    expect(done).toEqual({ verdict: { status: 'succeeded' } });
  });

  it('ends the bake only with a report the device made at least bake after its first ready one', () => {
    const first = judgeDevice(updating(), seen({ reportedAt: 500_000 }), timing, T0 + 10_000);
    expect(first.bake).toMatchObject({ readySeenAt: T0 + 10_000, reportAtReady: 500_000 });
    const record = first.bake!;
    // 60 s passed here, but the device's latest report is only 30 s (its clock) after the first:
    // a crash in its last 30 s would not show yet.
    const early = seen({ reportedAt: 530_000 });
    expect(judgeDevice(updating(record), early, timing, T0 + 80_000).verdict).toEqual({
      status: 'baking',
      until: T0 + 70_000,
    });
    const later = seen({ reportedAt: 560_000 });
    expect(judgeDevice(updating(record), later, timing, T0 + 81_000).verdict.status).toBe(
      'succeeded',
    );
  });

  it('succeeds at once with bake 0', () => {
    const zero = judgeDevice(updating(), seen(), { ...timing, bake: 0 }, T0);
    expect(zero.verdict).toEqual({ status: 'succeeded' });
  });

  it('a restart during the bake is crashed-after-start, by count or by a new active time', () => {
    const record = { readySeenAt: T0, restartsAtReady: 2, activeSinceAtReady: 500 };
    const byCount = judgeDevice(
      updating(record),
      seen({ restarts: 3, activeSince: 500 }),
      timing,
      T0 + 30_000,
    );
    expect(byCount.verdict).toMatchObject({ status: 'failed', reason: 'crashed-after-start' });
    // The device's clock may be off: only a change of its own activeSince counts.
    const byTime = judgeDevice(
      updating(record),
      seen({ restarts: 2, activeSince: 900 }),
      timing,
      T0 + 30_000,
    );
    expect(byTime.verdict).toMatchObject({ status: 'failed', reason: 'crashed-after-start' });
    const skewed = judgeDevice(
      updating(record),
      seen({ restarts: 2, activeSince: 500 }),
      timing,
      T0 + 30_000,
    );
    expect(skewed.verdict.status).toBe('baking');
  });

  it('losing readiness during the bake is unhealthy', () => {
    const record = { readySeenAt: T0 };
    const verdict = judgeDevice(updating(record), seen({ ready: false }), timing, T0 + 30_000);
    expect(verdict.verdict).toMatchObject({ status: 'failed', reason: 'unhealthy' });
  });

  it('takes the agent’s structured reason for the generation, and ignores older failures', () => {
    const failures = [
      { generation: 6, reason: 'pull-failed' as const },
      { generation: 7, reason: 'rolled-back' as const, detail: 'health gate: inactive after 15s' },
    ];
    expect(judgeDevice(updating(), seen({ failures }), timing, T0).verdict).toEqual({
      status: 'failed',
      reason: 'rolled-back',
      detail: 'health gate: inactive after 15s',
    });
    const old = [{ generation: 6, reason: 'pull-failed' as const }];
    expect(judgeDevice(updating(), seen({ failures: old }), timing, T0).verdict.status).toBe(
      'baking',
    );
  });

  it('fails as start-timeout after healthTimeout, counted from its return if it was away', () => {
    const notYet = seen({ appliedGeneration: 6 });
    expect(judgeDevice(updating(), notYet, timing, T0 + 300_000).verdict.status).toBe('applying');
    expect(judgeDevice(updating(), notYet, timing, T0 + 300_001).verdict).toMatchObject({
      status: 'failed',
      reason: 'start-timeout',
    });
    const back = seen({ appliedGeneration: 6, onlineSince: T0 + 250_000 });
    expect(judgeDevice(updating(), back, timing, T0 + 400_000).verdict.status).toBe('applying');
  });

  it('an offline device is offline, never failed, and its bake starts over', () => {
    const away = seen({ online: false, appliedGeneration: 6 });
    expect(judgeDevice(updating(), away, timing, T0 + 10 * 300_000)).toEqual({
      verdict: { status: 'offline' },
    });
    const baking = judgeDevice(
      updating({ readySeenAt: T0 }),
      seen({ online: false }),
      timing,
      T0 + 1,
    );
    expect(baking).toEqual({ verdict: { status: 'offline' }, bake: {} });
  });

  it('watches succeeded devices too: a later crash shows (bakeBetweenBatches)', () => {
    const device = {
      ...updating({ readySeenAt: T0, restartsAtReady: 0 }),
      state: 'succeeded' as const,
    };
    expect(judgeDevice(device, seen({ restarts: 1 }), timing, T0 + 600_000).verdict).toEqual({
      status: 'failed',
      reason: 'crashed-after-start',
      detail: 'restarted during its bake (after it had succeeded)',
    });
  });
});

const counts = (fields: Partial<BatchCounts>): BatchCounts => ({
  succeeded: 0, failed: 0, inFlight: 0, held: 0, offline: 0, skipped: 0, deferred: 0, ...fields,
}); // prettier-ignore

describe('judgeBatch', () => {
  it('succeeds at the threshold once nothing is in flight', () => {
    const threshold = { successThreshold: '80%' };
    expect(judgeBatch(counts({ succeeded: 8, offline: 2 }), threshold)).toMatchObject({
      outcome: 'succeeded',
      counted: 10,
      needed: 8,
    });
    expect(judgeBatch(counts({ succeeded: 8, inFlight: 1, offline: 1 }), threshold).outcome).toBe(
      'running',
    );
    expect(judgeBatch(counts({ succeeded: 7, offline: 3 }), threshold).outcome).toBe('running');
  });

  it('fails once the threshold is out of reach', () => {
    const threshold = { successThreshold: '80%' };
    expect(judgeBatch(counts({ failed: 2, inFlight: 8 }), threshold).outcome).toBe('running');
    expect(judgeBatch(counts({ failed: 3, inFlight: 7 }), threshold).outcome).toBe('failed');
  });

  it('takes skipped and deferred devices out of the count', () => {
    const verdict = judgeBatch(counts({ succeeded: 8, skipped: 1, deferred: 1 }), {
      successThreshold: '100%',
    });
    expect(verdict).toMatchObject({ outcome: 'succeeded', counted: 8, needed: 8 });
  });

  it('an empty batch (all deferred) succeeds', () => {
    expect(judgeBatch(counts({ deferred: 5 }), { successThreshold: 3 }).outcome).toBe('succeeded');
  });
});

describe('neededSuccesses', () => {
  it('reads successThreshold, or all but maxFailures', () => {
    expect(neededSuccesses(10, { successThreshold: 12 })).toBe(10);
    expect(neededSuccesses(10, { successThreshold: '75%' })).toBe(8);
    expect(neededSuccesses(10, { maxFailures: 0 })).toBe(10);
    expect(neededSuccesses(10, { maxFailures: '15%' })).toBe(8);
  });
});
