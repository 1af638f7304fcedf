import { describe, expect, it } from 'vitest';
import { RolloutStrategy } from '@podfleet/shared';
import {
  operate,
  tick,
  type DeviceObservation,
  type RolloutDevice,
  type RolloutProgress,
} from './progress.js';

const FROM = 'r.example/web:1';
const TO = 'r.example/web:2';

function rollout(strategy: Record<string, unknown>, batches: string[][]) {
  const progress: RolloutProgress = {
    state: 'running',
    strategy: RolloutStrategy.parse(strategy),
    batchCount: batches.length,
    currentBatch: 0,
    acceptedFailures: 0,
    awaitingApproval: false,
  };
  const devices: RolloutDevice[] = batches.flatMap((ids, batch) =>
    ids.map((id) => ({ id, batch, from: FROM, to: TO, state: 'pending' as const })),
  );
  return { progress, devices };
}

const online = (extra: Partial<DeviceObservation> = {}): DeviceObservation => ({
  online: true,
  appliedGeneration: 1,
  image: FROM,
  ready: true,
  failures: [],
  ...extra,
});

/** Applies a tick's changes, and issues generation 2 to every device it switched. */
function apply(state: ReturnType<typeof rollout>, result: ReturnType<typeof tick>) {
  state.progress = result.progress;
  state.devices = state.devices.map((d) => {
    const changed = { ...d, ...result.changes.get(d.id) };
    if (changed.state === 'updating' && changed.targetGeneration === undefined)
      changed.targetGeneration = 2;
    if (changed.state === 'reverting' && changed.revertGeneration === undefined)
      changed.revertGeneration = 3;
    return changed;
  });
}

const states = (devices: RolloutDevice[]) =>
  Object.fromEntries(devices.map((d) => [d.id, d.state]));

describe('rollout progress', () => {
  it('runs batches one after the other and succeeds when every device runs the new image, ready', () => {
    const r = rollout({ batchSize: 2 }, [['a', 'b'], ['c']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
      ['c', online()],
    ]);
    let t = tick(r.progress, r.devices, seen, 0);
    expect(t.happenings).toEqual(['batch 0 started: 2 devices']);
    expect(t.manifestsChange).toBe(true);
    apply(r, t);
    expect(states(r.devices)).toEqual({ a: 'updating', b: 'updating', c: 'pending' });
    seen.set('a', online({ appliedGeneration: 2, image: TO }));
    seen.set('b', online({ appliedGeneration: 2, image: TO, ready: false }));
    apply(r, (t = tick(r.progress, r.devices, seen, 1000)));
    expect(states(r.devices)).toEqual({ a: 'succeeded', b: 'updating', c: 'pending' });
    seen.set('b', online({ appliedGeneration: 2, image: TO }));
    apply(r, (t = tick(r.progress, r.devices, seen, 2000)));
    expect(t.happenings).toEqual([
      'b runs r.example/web:2',
      'batch 0 done: 2 of 2 succeeded',
      'batch 1 started: 1 devices',
    ]);
    seen.set('c', online({ appliedGeneration: 2, image: TO }));
    apply(r, (t = tick(r.progress, r.devices, seen, 3000)));
    expect(r.progress.state).toBe('succeeded');
  });

  it('fails a device on the rollback it reports, with its reason, and points it back', () => {
    const r = rollout({ batchSize: 2, maxFailures: 1 }, [['a', 'b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set(
      'a',
      online({ failures: [{ generation: 2, reason: 'web: not ready within 60s; rolled back' }] }),
    );
    const t = tick(r.progress, r.devices, seen, 1000);
    apply(r, t);
    expect(r.devices[0]).toMatchObject({
      state: 'failed',
      reason: 'web: not ready within 60s; rolled back',
    });
    expect(t.manifestsChange).toBe(true);
    expect(r.progress.state).toBe('running');
  });

  it('ignores a failure reported for an older generation', () => {
    const r = rollout({}, [['a']]);
    const seen = new Map([['a', online({ failures: [{ generation: 1, reason: 'old' }] })]]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.devices[0]!.state).toBe('updating');
  });

  it('fails a device that is online but not ready within healthTimeout', () => {
    const r = rollout({ healthTimeout: '30s', maxFailures: 5 }, [['a']]);
    const seen = new Map([['a', online()]]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    apply(r, tick(r.progress, r.devices, seen, 30_000));
    expect(r.devices[0]!.state).toBe('updating');
    apply(r, tick(r.progress, r.devices, seen, 30_001));
    expect(r.devices[0]).toMatchObject({
      state: 'failed',
      reason: `not running ${TO} and ready within healthTimeout (30s)`,
    });
  });

  it('waits for an offline device and counts healthTimeout from its return (offlineDevices: wait)', () => {
    const r = rollout({ healthTimeout: '30s' }, [['a']]);
    const seen = new Map([['a', online({ online: false })]]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    expect(r.devices[0]!.state).toBe('updating');
    apply(r, tick(r.progress, r.devices, seen, 600_000));
    expect(r.devices[0]!.state).toBe('updating');
    seen.set('a', online({ onlineSince: 600_000 }));
    apply(r, tick(r.progress, r.devices, seen, 620_000));
    expect(r.devices[0]!.state).toBe('updating');
    apply(r, tick(r.progress, r.devices, seen, 630_001));
    expect(r.devices[0]!.state).toBe('failed');
  });

  it('skips devices offline when their batch starts (offlineDevices: skip) and finishes without them', () => {
    const r = rollout({ offlineDevices: 'skip' }, [['a', 'b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online({ online: false })],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    expect(states(r.devices)).toEqual({ a: 'updating', b: 'skipped' });
    seen.set('a', online({ appliedGeneration: 2, image: TO }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress.state).toBe('succeeded');
  });

  it('rolls back every updated device when the canary fails beyond maxFailures (autoRollback)', () => {
    const r = rollout({ canary: 1, batchSize: 2 }, [['a'], ['b', 'c']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
      ['c', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', online({ failures: [{ generation: 2, reason: 'crash loop' }] }));
    const t = tick(r.progress, r.devices, seen, 1000);
    apply(r, t);
    expect(r.progress.state).toBe('rolling_back');
    expect(r.progress.reason).toBe(
      'rolling back: batch 0: 1 of 1 devices failed, 1 of 3 overall (maxFailures 0)',
    );
    expect(states(r.devices)).toEqual({ a: 'failed', b: 'pending', c: 'pending' });
    apply(r, tick(r.progress, r.devices, seen, 2000));
    expect(r.progress.state).toBe('rolled_back');
  });

  it('reverts succeeded devices and waits until they report the previous image', () => {
    const r = rollout({ batchSize: 1 }, [['a'], ['b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', online({ appliedGeneration: 2, image: TO }));
    apply(r, tick(r.progress, r.devices, seen, 1000)); // a succeeded, batch 1 starts
    seen.set('b', online({ failures: [{ generation: 2, reason: 'exit 1' }] }));
    apply(r, tick(r.progress, r.devices, seen, 2000));
    expect(r.progress.state).toBe('rolling_back');
    expect(states(r.devices)).toEqual({ a: 'reverting', b: 'failed' });
    apply(r, tick(r.progress, r.devices, seen, 3000));
    expect(r.progress.state).toBe('rolling_back');
    seen.set('a', online({ appliedGeneration: 3, image: FROM }));
    apply(r, tick(r.progress, r.devices, seen, 4000));
    expect(states(r.devices)).toEqual({ a: 'reverted', b: 'failed' });
    expect(r.progress.state).toBe('rolled_back');
  });

  it('pauses instead of rolling back without autoRollback, and a resume accepts the failures so far', () => {
    const r = rollout({ autoRollback: false, batchSize: 1 }, [['a'], ['b']]);
    const seen = new Map([
      ['a', online({ failures: [] })],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', online({ failures: [{ generation: 2, reason: 'bad' }] }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress.state).toBe('paused');
    apply(r, tick(r.progress, r.devices, seen, 2000));
    expect(r.progress.state).toBe('paused');
    apply(r, operate(r.progress, r.devices, 'resume', 'ops', 3000));
    expect(r.progress).toMatchObject({ state: 'running', acceptedFailures: 1 });
    apply(r, tick(r.progress, r.devices, seen, 4000));
    expect(states(r.devices)).toEqual({ a: 'failed', b: 'updating' });
  });

  it('waits for approval after the canary, then goes on', () => {
    const r = rollout({ canary: 1, approveAfterCanary: true }, [['a'], ['b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', online({ appliedGeneration: 2, image: TO }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress).toMatchObject({
      state: 'paused',
      awaitingApproval: true,
      reason: 'awaiting approval after the canary',
    });
    apply(r, tick(r.progress, r.devices, seen, 60_000));
    expect(states(r.devices)).toEqual({ a: 'succeeded', b: 'pending' });
    apply(r, operate(r.progress, r.devices, 'resume', 'alice', 61_000));
    expect(r.progress.reason).toBe('approved by alice');
    apply(r, tick(r.progress, r.devices, seen, 62_000));
    expect(states(r.devices)).toEqual({ a: 'succeeded', b: 'updating' });
  });

  it('waits pauseBetweenBatches before the next batch', () => {
    const r = rollout({ batchSize: 1, pauseBetweenBatches: '1m' }, [['a'], ['b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', online({ appliedGeneration: 2, image: TO }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    apply(r, tick(r.progress, r.devices, seen, 60_999));
    expect(r.devices[1]!.state).toBe('pending');
    apply(r, tick(r.progress, r.devices, seen, 61_000));
    expect(r.devices[1]!.state).toBe('updating');
  });

  it('does not start batches while paused, but records results of the current one', () => {
    const r = rollout({ batchSize: 1 }, [['a'], ['b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    apply(r, operate(r.progress, r.devices, 'pause', 'ops', 500));
    seen.set('a', online({ appliedGeneration: 2, image: TO }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(states(r.devices)).toEqual({ a: 'succeeded', b: 'pending' });
    expect(r.progress.state).toBe('paused');
  });

  it('aborts: with autoRollback the updated devices go back; without, they stay', () => {
    const withRollback = rollout({}, [['a']]);
    const seen = new Map([['a', online()]]);
    apply(withRollback, tick(withRollback.progress, withRollback.devices, seen, 0));
    apply(withRollback, operate(withRollback.progress, withRollback.devices, 'abort', 'ops', 1));
    expect(withRollback.progress).toMatchObject({
      state: 'rolling_back',
      reason: 'rolling back: aborted by ops',
    });
    expect(withRollback.devices[0]!.state).toBe('reverting');

    const without = rollout({ autoRollback: false }, [['a']]);
    apply(without, tick(without.progress, without.devices, seen, 0));
    apply(without, operate(without.progress, without.devices, 'abort', 'ops', 1));
    expect(without.progress.state).toBe('aborted');
    expect(without.devices[0]!.state).toBe('updating');
    expect(() => operate(without.progress, without.devices, 'resume', 'ops', 2)).toThrow(
      'cannot resume a rollout that is aborted',
    );
  });
});
