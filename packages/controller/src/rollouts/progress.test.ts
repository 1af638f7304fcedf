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
    awaitingApproval: false,
    approvedBatches: [],
    waiting: [],
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
      online({
        failures: [
          {
            generation: 2,
            reason: 'rolled-back',
            detail: 'web: not ready within 60s; rolled back',
          },
        ],
      }),
    );
    const t = tick(r.progress, r.devices, seen, 1000);
    apply(r, t);
    expect(r.devices[0]).toMatchObject({
      state: 'failed',
      reason: 'web: not ready within 60s; rolled back',
      failure: { reason: 'rolled-back', journal: [] },
    });
    expect(t.manifestsChange).toBe(true);
    expect(r.progress.state).toBe('running');
  });

  it('ignores a failure reported for an older generation', () => {
    const r = rollout({}, [['a']]);
    const seen = new Map([['a', online({ failures: [{ generation: 1, reason: 'unhealthy' }] })]]);
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
      failure: { reason: 'start-timeout' },
    });
  });

  it('holds an offline device back until it returns, then counts healthTimeout from its start (offlineDevices: wait)', () => {
    const r = rollout({ healthTimeout: '30s' }, [['a']]);
    const seen = new Map([['a', online({ online: false })]]);
    let t = tick(r.progress, r.devices, seen, 0);
    apply(r, t);
    expect(r.devices[0]).toMatchObject({
      state: 'pending',
      hold: 'offline: waiting for it to return',
    });
    expect(t.manifestsChange).toBe(false);
    expect(r.progress.waiting).toEqual(['1 device: offline: waiting for it to return']);
    apply(r, tick(r.progress, r.devices, seen, 600_000));
    expect(r.devices[0]!.state).toBe('pending');
    seen.set('a', online({ onlineSince: 600_000 }));
    apply(r, (t = tick(r.progress, r.devices, seen, 620_000)));
    expect(r.devices[0]).toMatchObject({ state: 'updating', switchedAt: 620_000 });
    expect(r.devices[0]!.hold).toBeUndefined();
    expect(r.progress.waiting).toEqual([]);
    apply(r, tick(r.progress, r.devices, seen, 650_000));
    expect(r.devices[0]!.state).toBe('updating');
    apply(r, tick(r.progress, r.devices, seen, 650_001));
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
    seen.set('a', online({ failures: [{ generation: 2, reason: 'crashed-after-start' }] }));
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
    seen.set(
      'b',
      online({ failures: [{ generation: 2, reason: 'pull-failed', detail: 'exit 1' }] }),
    );
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
    seen.set('a', online({ failures: [{ generation: 2, reason: 'unhealthy' }] }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress.state).toBe('paused');
    apply(r, tick(r.progress, r.devices, seen, 2000));
    expect(r.progress.state).toBe('paused');
    apply(r, operate(r.progress, r.devices, 'resume', 'ops', 3000));
    expect(r.progress.state).toBe('running');
    expect(r.devices[0]).toMatchObject({ state: 'failed', accepted: true });
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
      state: 'running',
      currentBatch: 1,
      awaitingApproval: true,
      reason: 'awaiting approval after batch 0 (the canary)',
      waiting: ['1 device: waiting for approval after batch 0'],
    });
    apply(r, tick(r.progress, r.devices, seen, 60_000));
    expect(states(r.devices)).toEqual({ a: 'succeeded', b: 'pending' });
    expect(() => operate(r.progress, r.devices, 'resume', 'alice', 61_000)).toThrow(
      'cannot resume a rollout that is running',
    );
    apply(r, operate(r.progress, r.devices, 'approve', 'alice', 61_000));
    expect(r.progress).toMatchObject({ reason: 'batch 0 approved by alice', approvedBatches: [0] });
    expect(() => operate(r.progress, r.devices, 'approve', 'bob', 61_500)).toThrow(
      'rollout is not waiting for an approval',
    );
    apply(r, tick(r.progress, r.devices, seen, 62_000));
    expect(states(r.devices)).toEqual({ a: 'succeeded', b: 'updating' });
    expect(r.progress.awaitingApproval).toBe(false);
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

describe('rollout progress under a policy (decision 006)', () => {
  const policyRollout = (policy: Record<string, unknown>, batches: string[][], strategy = {}) =>
    rollout({ batchSize: '100%', healthTimeout: '5m', ...strategy, policy }, batches);
  const labelled = (labels: Record<string, string>, extra: Partial<DeviceObservation> = {}) =>
    online({ labels, ...extra });
  const runsNew = (labels: Record<string, string> = {}, extra: Partial<DeviceObservation> = {}) =>
    online({ labels, appliedGeneration: 2, image: TO, ...extra });

  it('holds a batch back by a per-site disruption budget and says which group holds it', () => {
    const r = policyRollout(
      { bake: '0s', disruptionBudget: { groupBy: ['site'], maxUnavailable: 1 } },
      [['b1', 'b2', 'b3', 'p1', 'p2']],
    );
    const site = (id: string) => ({ site: id.startsWith('b') ? 'berlin' : 'paris' });
    const seen = new Map(r.devices.map((d) => [d.id, labelled(site(d.id))]));
    apply(r, tick(r.progress, r.devices, seen, 0));
    expect(states(r.devices)).toEqual({
      b1: 'updating', b2: 'pending', b3: 'pending', p1: 'updating', p2: 'pending',
    }); // prettier-ignore
    expect(r.progress.waiting).toEqual([
      '2 devices: budget of group site=berlin full: 1 of 3 updating or failed, maxUnavailable 1',
      '1 device: budget of group site=paris full: 1 of 2 updating or failed, maxUnavailable 1',
    ]);
    expect(r.devices.find((d) => d.id === 'b2')!.hold).toMatch(/^budget of group site=berlin full/);
    seen.set('b1', runsNew(site('b1')));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(states(r.devices)).toMatchObject({ b1: 'succeeded', b2: 'updating', b3: 'pending' });
  });

  it('starts devices only inside their maintenance window, in the window’s time zone', () => {
    const windows = [
      { match: { site: 'berlin' }, schedule: 'Mon-Fri 01:00-05:00', timeZone: 'Europe/Berlin' },
    ];
    const r = policyRollout({ bake: '0s', windows }, [['b1', 'x1']]);
    const seen = new Map([
      ['b1', labelled({ site: 'berlin' })],
      ['x1', labelled({ site: 'paris' })],
    ]);
    const monday1200 = Date.parse('2026-11-30T12:00:00Z');
    apply(r, tick(r.progress, r.devices, seen, monday1200));
    expect(states(r.devices)).toEqual({ b1: 'pending', x1: 'updating' });
    expect(r.progress.waiting).toEqual([
      '1 device: window Mon-Fri 01:00-05:00 Europe/Berlin closed until 2026-12-01T01:00+01:00',
    ]);
    seen.set('x1', runsNew({ site: 'paris' }));
    const opens = Date.parse('2026-12-01T00:00:00Z'); // 01:00 in Berlin (UTC+1)
    apply(r, tick(r.progress, r.devices, seen, opens - 1));
    expect(r.devices[0]!.state).toBe('pending');
    apply(r, tick(r.progress, r.devices, seen, opens));
    expect(r.devices[0]).toMatchObject({ state: 'updating', switchedAt: opens });
  });

  it('succeeds a device only after its bake, and fails one that restarts during it as crashed-after-start', () => {
    const r = policyRollout({ bake: '60s', successThreshold: 1 }, [['a', 'b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    const ready = { restarts: 0, activeSince: 5_000 };
    seen.set('a', runsNew({}, ready));
    seen.set('b', runsNew({}, ready));
    apply(r, tick(r.progress, r.devices, seen, 10_000));
    expect(states(r.devices)).toEqual({ a: 'updating', b: 'updating' });
    expect(r.devices[0]!.bake).toEqual({
      readySeenAt: 10_000,
      restartsAtReady: 0,
      activeSinceAtReady: 5_000,
    });
    seen.set('b', runsNew({}, { restarts: 1, activeSince: 40_000 }));
    apply(r, tick(r.progress, r.devices, seen, 45_000));
    expect(r.devices[1]).toMatchObject({
      state: 'failed',
      reason: 'restarted during its bake',
      failure: { reason: 'crashed-after-start' },
    });
    apply(r, tick(r.progress, r.devices, seen, 69_999));
    expect(r.devices[0]!.state).toBe('updating');
    apply(r, tick(r.progress, r.devices, seen, 70_000));
    expect(r.devices[0]!.state).toBe('succeeded');
    // One success was enough (successThreshold 1): the rollout does not roll back for b.
    expect(r.progress.state).toBe('succeeded');
  });

  it('aborts on its criteria and re-pins every updated device, cancelling the ones not started', () => {
    const r = policyRollout(
      {
        bake: '0s',
        successThreshold: '50%',
        abort: { failures: 2, minDevices: 3 },
        rate: { kind: 'exponential', start: 4, factor: 2, maxPerMinute: 100 },
      },
      [['a', 'b', 'c', 'd', 'e']],
    );
    const seen = new Map(r.devices.map((d) => [d.id, online()]));
    apply(r, tick(r.progress, r.devices, seen, 0));
    expect(states(r.devices)).toEqual({
      a: 'updating', b: 'updating', c: 'updating', d: 'updating', e: 'pending',
    }); // prettier-ignore
    expect(r.devices[4]!.hold).toMatch(/^rate limit 4\/min until /);
    seen.set('a', runsNew());
    seen.set('b', online({ failures: [{ generation: 2, reason: 'pull-failed' }] }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress.state).toBe('running'); // 1 failure of 2 finished: not yet
    seen.set('c', online({ failures: [{ generation: 2, reason: 'unhealthy' }] }));
    const t = tick(r.progress, r.devices, seen, 2000);
    apply(r, t);
    expect(r.progress).toMatchObject({ state: 'rolling_back' });
    expect(r.progress.reason).toBe(
      'rolling back: aborted: 2 of 3 finished devices failed (failures ≥ 2, after at least 3)',
    );
    expect(states(r.devices)).toEqual({
      a: 'reverting', b: 'failed', c: 'failed', d: 'reverting', e: 'skipped',
    }); // prettier-ignore
    expect(t.manifestsChange).toBe(true);
    seen.set('a', online({ appliedGeneration: 3, image: FROM }));
    seen.set('d', online({ appliedGeneration: 3, image: FROM }));
    apply(r, tick(r.progress, r.devices, seen, 3000));
    expect(r.progress.state).toBe('rolled_back');
  });

  it('halts on its criteria under onAbort: halt, leaving updated devices as they are', () => {
    const r = policyRollout({ bake: '0s', abort: { failures: 1, onAbort: 'halt' } }, [['a', 'b']]);
    const seen = new Map([
      ['a', online({ failures: [{ generation: 2, reason: 'unhealthy' }] })],
      ['b', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress.state).toBe('aborted');
    expect(states(r.devices)).toEqual({ a: 'failed', b: 'updating' });
  });

  it('defers offline devices out of the batch count and updates them when they return', () => {
    const r = policyRollout({ bake: '0s', offlineDevices: 'defer' }, [['a', 'b'], ['c']], {
      batchSize: 2,
    });
    const seen = new Map([
      ['a', online()],
      ['b', online({ online: false })],
      ['c', online()],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    expect(states(r.devices)).toEqual({ a: 'updating', b: 'deferred', c: 'pending' });
    seen.set('a', runsNew());
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress.currentBatch).toBe(1);
    expect(states(r.devices)).toEqual({ a: 'succeeded', b: 'deferred', c: 'updating' });
    expect(r.devices[1]!.hold).toBe('offline: deferred, updated when it returns');
    seen.set('b', online({ onlineSince: 1500 }));
    apply(r, tick(r.progress, r.devices, seen, 2000));
    expect(r.devices[1]).toMatchObject({ state: 'updating', switchedAt: 2000 });
  });

  it('finishes with devices still away: their manifests carry the new image for their return', () => {
    const r = policyRollout({ bake: '0s', offlineDevices: 'defer' }, [['a', 'b']]);
    const seen = new Map([
      ['a', online()],
      ['b', online({ online: false })],
    ]);
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', runsNew());
    const t = tick(r.progress, r.devices, seen, 1000);
    apply(r, t);
    expect(r.progress.state).toBe('succeeded');
    expect(r.devices[1]).toMatchObject({
      state: 'updating',
      reason: 'offline when the rollout finished: gets the new image when it returns',
    });
    expect(t.manifestsChange).toBe(true);
  });

  it('accepts on resume only the failures there were: a later batch’s failure still counts against it', () => {
    const r = policyRollout({ bake: '0s', successThreshold: '100%' }, [['a'], ['b', 'c']], {
      autoRollback: false,
      batchSize: 1,
    });
    const seen = new Map(r.devices.map((d) => [d.id, online()]));
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', online({ failures: [{ generation: 2, reason: 'unhealthy' }] }));
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress.state).toBe('paused');
    apply(r, operate(r.progress, r.devices, 'resume', 'ops', 2000));
    expect(r.devices[0]).toMatchObject({ state: 'failed', accepted: true });
    apply(r, tick(r.progress, r.devices, seen, 3000));
    expect(r.progress).toMatchObject({ state: 'running', currentBatch: 1 });
    seen.set('b', online({ failures: [{ generation: 2, reason: 'pull-failed' }] }));
    seen.set('c', runsNew());
    apply(r, tick(r.progress, r.devices, seen, 4000));
    // b's failure is its own: batch 1 had to succeed whole, so the rollout pauses again.
    expect(states(r.devices)).toEqual({ a: 'failed', b: 'failed', c: 'succeeded' });
    expect(r.devices[1]!.accepted).toBeUndefined();
    expect(r.progress).toMatchObject({
      state: 'paused',
      reason: expect.stringContaining('batch 1: 1 of 2 devices failed'),
    });
  });

  it('waits for an approval named by batch index, and bakes between batches before the next', () => {
    const r = policyRollout({ bake: '0s', bakeBetweenBatches: '30s', approval: { after: [0] } }, [
      ['a'],
      ['b'],
      ['c'],
    ]);
    const seen = new Map(r.devices.map((d) => [d.id, online()]));
    apply(r, tick(r.progress, r.devices, seen, 0));
    seen.set('a', runsNew());
    apply(r, tick(r.progress, r.devices, seen, 1000));
    expect(r.progress).toMatchObject({ currentBatch: 1, awaitingApproval: true });
    apply(r, operate(r.progress, r.devices, 'approve', 'alice', 2000));
    apply(r, tick(r.progress, r.devices, seen, 3000));
    // Approved, but the previous batch bakes until 31 s after it finished.
    expect(r.progress.waiting).toEqual([
      `1 device: baking the previous batch until ${new Date(31_000).toISOString()}`,
    ]);
    apply(r, tick(r.progress, r.devices, seen, 31_000));
    expect(states(r.devices)).toMatchObject({ b: 'updating', c: 'pending' });
  });
});
