import { RolloutPolicy } from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import { abortVerdict, type AbortDevice } from './abort.js';
import type { PolicyDeviceState } from './device.js';

const criteria = (abort: object) => RolloutPolicy.parse({ abort }).abort!;

function fleet(counts: Partial<Record<PolicyDeviceState, number>>): AbortDevice[] {
  const devices: AbortDevice[] = [];
  for (const [state, n] of Object.entries(counts))
    for (let i = 0; i < n; i++)
      devices.push({ id: `${state}-${i}`, state: state as PolicyDeviceState });
  return devices;
}

describe('abortVerdict', () => {
  it('aborts exactly at the failure count once minDevices finished', () => {
    const rule = criteria({ failures: 3, minDevices: 10 });
    expect(abortVerdict(rule, fleet({ failed: 2, succeeded: 8, pending: 90 })).abort).toBe(false);
    const verdict = abortVerdict(rule, fleet({ failed: 3, succeeded: 7, pending: 90 }));
    expect(verdict).toMatchObject({
      abort: true,
      finished: 10,
      failed: 3,
      reason: '3 of 10 finished devices failed (failures ≥ 3, after at least 10)',
    });
  });

  it('waits for minDevices finished devices, however many failed', () => {
    const rule = criteria({ failures: 3, minDevices: 10 });
    expect(abortVerdict(rule, fleet({ failed: 5, succeeded: 4, updating: 20 }))).toEqual({
      abort: false,
      finished: 9,
      failed: 5,
    });
  });

  it('aborts exactly at the failure rate, not just below it', () => {
    const rule = criteria({ failureRate: '10%', minDevices: 20 });
    expect(abortVerdict(rule, fleet({ failed: 2, succeeded: 18, pending: 5 })).abort).toBe(true);
    expect(abortVerdict(rule, fleet({ failed: 2, succeeded: 19, pending: 5 })).abort).toBe(false);
    const odd = criteria({ failureRate: '14.3%', minDevices: 1 });
    expect(abortVerdict(odd, fleet({ failed: 1, succeeded: 6 })).abort).toBe(false); // 14.28…%
    expect(abortVerdict(odd, fleet({ failed: 1, succeeded: 5 })).abort).toBe(true);
  });

  it('with a rollout smaller than minDevices, judges once all its devices finished', () => {
    const rule = criteria({ failureRate: '50%', minDevices: 100 });
    expect(abortVerdict(rule, fleet({ failed: 2, updating: 1, skipped: 4 })).abort).toBe(false);
    expect(abortVerdict(rule, fleet({ failed: 2, succeeded: 1, skipped: 4 })).abort).toBe(true);
  });

  it('does not count failures the operator accepted by resuming', () => {
    const rule = criteria({ failures: 2, minDevices: 1 });
    const devices = fleet({ failed: 2, succeeded: 5 });
    expect(abortVerdict(rule, devices).abort).toBe(true);
    const accept = (n: number) =>
      devices.map((d, i) => (d.state === 'failed' && i < n ? { ...d, accepted: true } : d));
    expect(abortVerdict(rule, accept(1))).toMatchObject({ abort: false, failed: 1, finished: 6 });
    expect(abortVerdict(rule, accept(2))).toMatchObject({ abort: false, failed: 0, finished: 5 });
  });

  it('revert re-pins every device that carries the new image; halt leaves them', () => {
    const devices = fleet({
      failed: 1,
      succeeded: 2,
      updating: 1,
      pending: 2,
      deferred: 1,
      skipped: 1,
    });
    const revert = abortVerdict(criteria({ failures: 1 }), devices);
    expect(revert).toMatchObject({
      abort: true,
      onAbort: 'revert',
      revert: ['succeeded-0', 'succeeded-1', 'updating-0'],
      cancel: ['pending-0', 'pending-1', 'deferred-0'],
    });
    const halt = abortVerdict(criteria({ failures: 1, onAbort: 'halt' }), devices);
    expect(halt).toMatchObject({ abort: true, onAbort: 'halt', revert: [] });
  });

  it('never aborts without failures', () => {
    const rule = criteria({ failureRate: '0%', minDevices: 1 });
    expect(abortVerdict(rule, fleet({ succeeded: 10 })).abort).toBe(false);
  });
});
