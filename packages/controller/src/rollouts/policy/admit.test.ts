import { RolloutPolicy, type RolloutPolicyInput } from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import { admit, describeHold, summarizeHolds, type AdmissionInput } from './admit.js';
import type { PolicyDevice } from './device.js';
import { compileWindows } from './windows.js';

const NOW = Date.parse('2026-12-01T12:00:00Z'); // Tuesday, 13:00 in Berlin

function device(id: string, batch: number, fields: Partial<PolicyDevice> = {}): PolicyDevice {
  return { id, batch, state: 'pending', online: true, labels: { site: 'berlin' }, ...fields };
}

function input(
  devices: PolicyDevice[],
  policyInput: RolloutPolicyInput = {},
  fields: Partial<AdmissionInput> = {},
): AdmissionInput {
  const policy = RolloutPolicy.parse(policyInput);
  return {
    now: NOW,
    devices,
    currentBatch: 0,
    bakeBetweenBatches: policy.bakeBetweenBatches ?? 0,
    approvalPoints: new Set(),
    approved: new Set(),
    windows: compileWindows(policy.windows).windows,
    ...(policy.disruptionBudget ? { budget: policy.disruptionBudget } : {}),
    rate: policy.rate,
    offlineDevices: policy.offlineDevices ?? 'wait',
    ...fields,
  };
}

describe('admit', () => {
  it('starts every pending device of the current batch when nothing holds them', () => {
    const devices = [device('a', 0), device('b', 0), device('c', 1)];
    const admission = admit(input(devices));
    expect(admission).toEqual({ start: ['a', 'b'], skip: [], defer: [], held: new Map() });
  });

  it('leaves devices alone that are not pending (and deferred ones that are online go)', () => {
    const devices = [
      device('a', 0, { state: 'updating' }),
      device('b', 0, { state: 'succeeded' }),
      device('c', 0, { state: 'failed' }),
      device('d', 0, { state: 'deferred' }),
    ];
    expect(admit(input(devices)).start).toEqual(['d']);
  });

  it('holds the batch after an approval point until it is approved', () => {
    const devices = [device('canary', 0, { state: 'succeeded' }), device('a', 1), device('b', 1)];
    const gated = input(devices, {}, { currentBatch: 1, approvalPoints: new Set([0]) });
    const held = admit(gated);
    expect(held.start).toEqual([]);
    expect(held.held.get('a')).toEqual({ kind: 'approval', afterBatch: 0 });
    expect(summarizeHolds(held.held)).toEqual(['2 devices: waiting for approval after batch 0']);
    expect(admit({ ...gated, approved: new Set([0]) }).start).toEqual(['a', 'b']);
  });

  it('holds the next batch while the previous one bakes', () => {
    const devices = [device('a', 0, { state: 'succeeded' }), device('b', 1)];
    const baking = input(
      devices,
      { bakeBetweenBatches: '10m' },
      {
        currentBatch: 1,
        previousBatchDoneAt: NOW - 60_000,
      },
    );
    expect(admit(baking).held.get('b')).toEqual({ kind: 'bake', until: NOW + 540_000 });
    expect(admit({ ...baking, now: NOW + 540_000 }).start).toEqual(['b']);
  });

  it('does not gate devices of opened batches that come back (deferred, or left waiting)', () => {
    const devices = [
      device('late', 0, { state: 'pending' }),
      device('away', 0, { state: 'deferred' }),
      device('next', 1),
    ];
    const admission = admit(input(devices, {}, { currentBatch: 1, approvalPoints: new Set([0]) }));
    expect(admission.start).toEqual(['late', 'away']);
    expect(admission.held.get('next')).toMatchObject({ kind: 'approval' });
  });

  it('holds a device outside its window and says until when, in its zone', () => {
    const policy = {
      windows: [
        { match: { site: 'berlin' }, schedule: 'Mon-Fri 01:00-05:00', timeZone: 'Europe/Berlin' },
      ],
    };
    const devices = [device('a', 0), device('b', 0, { labels: { site: 'paris' } })];
    const admission = admit(input(devices, policy));
    expect(admission.start).toEqual(['b']);
    const hold = admission.held.get('a')!;
    expect(describeHold(hold)).toBe(
      'window Mon-Fri 01:00-05:00 Europe/Berlin closed until 2026-12-02T01:00+01:00',
    );
  });

  it('handles offline devices by offlineDevices: wait holds, skip skips, defer defers', () => {
    const devices = [device('up', 0), device('down', 0, { online: false })];
    const wait = admit(input(devices, { offlineDevices: 'wait' }));
    expect(wait.start).toEqual(['up']);
    expect(describeHold(wait.held.get('down')!)).toBe('offline: waiting for it to return');
    expect(admit(input(devices, { offlineDevices: 'skip' })).skip).toEqual(['down']);
    expect(admit(input(devices, { offlineDevices: 'defer' })).defer).toEqual(['down']);
    const stillAway = [device('down', 0, { online: false, state: 'deferred' })];
    expect(admit(input(stillAway, { offlineDevices: 'defer' })).held.get('down')).toEqual({
      kind: 'offline-deferred',
    });
  });

  it('judges the window before offline: a device is only skipped when its window is open', () => {
    const policy = {
      offlineDevices: 'skip' as const,
      windows: [{ schedule: '01:00-05:00', timeZone: 'Europe/Berlin' }],
    };
    const admission = admit(input([device('down', 0, { online: false })], policy));
    expect(admission.skip).toEqual([]);
    expect(admission.held.get('down')).toMatchObject({ kind: 'window' });
  });

  it('fills each group up to maxUnavailable, counting devices of earlier batches', () => {
    const devices = [
      device('b-old', 0, { state: 'failed' }),
      device('b1', 1),
      device('b2', 1),
      device('b3', 1),
      device('p1', 1, { labels: { site: 'paris' } }),
      device('p2', 1, { labels: { site: 'paris' } }),
    ];
    const policy = { disruptionBudget: { groupBy: ['site'], maxUnavailable: 2 } };
    const admission = admit(input(devices, policy, { currentBatch: 1 }));
    expect(admission.start).toEqual(['b1', 'p1', 'p2']);
    expect(summarizeHolds(admission.held)).toEqual([
      '2 devices: budget of group site=berlin full: 2 of 4 updating or failed, maxUnavailable 2',
    ]);
  });

  it('respects minAvailable with offline devices in the group', () => {
    const devices = [
      device('a', 0),
      device('b', 0),
      device('c', 0),
      device('d', 0, { online: false }),
      device('e', 0, { state: 'succeeded' }),
    ];
    const policy = { disruptionBudget: { groupBy: ['site'], minAvailable: 2 } };
    const admission = admit(input(devices, policy));
    expect(admission.start).toEqual(['a', 'b']);
    expect(describeHold(admission.held.get('c')!)).toBe(
      'budget of group site=berlin full: 2 of 5 available (1 offline), minAvailable 2',
    );
  });

  it('limits starts by the rate and says when the next minute begins', () => {
    const devices = Array.from({ length: 6 }, (_, i) => device(`d${i}`, 0));
    const policy: RolloutPolicyInput = {
      rate: { kind: 'exponential', start: 2, factor: 2, maxPerMinute: 8 },
    };
    const first = admit(input(devices, policy));
    expect(first.start).toEqual(['d0', 'd1']);
    expect(first.held.get('d5')).toEqual({ kind: 'rate', until: NOW + 60_000, perMinute: 2 });
    const started = devices.map((d, i) =>
      i < 2 ? { ...d, state: 'updating' as const, switchedAt: NOW } : d,
    );
    const same = admit(input(started, policy, { now: NOW + 30_000 }));
    expect(same.start).toEqual([]);
    expect(describeHold(same.held.get('d2')!)).toBe(
      'rate limit 2/min until 2026-12-01T12:01:00.000Z',
    );
    expect(admit(input(started, policy, { now: NOW + 60_000 })).start).toEqual([
      'd2', 'd3', 'd4', 'd5',
    ]); // prettier-ignore
  });

  it('a device held by its budget does not use the rate', () => {
    const devices = [
      device('b1', 0),
      device('b2', 0),
      device('p1', 0, { labels: { site: 'paris' } }),
    ];
    const policy: RolloutPolicyInput = {
      disruptionBudget: { groupBy: ['site'], maxUnavailable: 1 },
      rate: { kind: 'exponential', start: 2, factor: 2, maxPerMinute: 2 },
    };
    expect(admit(input(devices, policy)).start).toEqual(['b1', 'p1']);
  });
});
