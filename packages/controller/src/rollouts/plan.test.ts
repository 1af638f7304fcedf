import { describe, expect, it } from 'vitest';
import { RolloutSpec } from '@podfleet/shared';
import { emptyPlanProblem } from './empty-plan.js';
import { canaryProblem, planRollout, type RolloutCandidate } from './plan.js';

const spec = (strategy: Record<string, unknown>, overridePins: string[] = []) =>
  RolloutSpec.parse({
    service: 'web',
    image: 'r.example/web:2',
    targets: { groups: ['edge'] },
    strategy,
    overridePins,
  });

const device = (id: string, extra: Partial<RolloutCandidate> = {}): RolloutCandidate => ({
  id,
  labels: {},
  image: 'r.example/web:1',
  ...extra,
});

describe('planRollout', () => {
  it('puts canary devices first (labelled canary, then by id), then batches of batchSize', () => {
    const devices = ['d5', 'd1', 'd4', 'd2', 'd3', 'd6'].map((id) =>
      device(id, id === 'd4' ? { labels: { canary: 'true' } } : {}),
    );
    const plan = planRollout(spec({ canary: 2, batchSize: 2 }), 'r.example/web:2', devices);
    expect(plan.batches.map((b) => [b.kind, b.devices.map((d) => d.id)])).toEqual([
      ['canary', ['d4', 'd1']],
      ['batch', ['d2', 'd3']],
      ['batch', ['d5', 'd6']],
    ]);
    expect(plan.batches[0]!.devices[0]).toEqual({
      id: 'd4',
      from: 'r.example/web:1',
      to: 'r.example/web:2',
      overGroupPin: false,
    });
    expect(plan.total).toBe(6);
  });

  it('sizes percentage batches from the devices after the canary, rounding up', () => {
    const devices = Array.from({ length: 21 }, (_, i) => device(`d${String(i).padStart(2, '0')}`));
    const plan = planRollout(spec({ canary: 1, batchSize: '25%' }), 'r.example/web:2', devices);
    expect(plan.batches.map((b) => b.devices.length)).toEqual([1, 5, 5, 5, 5]);
  });

  it('leaves out devices pinned on the device, pinned by a group it does not name, or already there', () => {
    const devices = [
      device('a', { pinnedBy: { kind: 'device' } }),
      device('b', { pinnedBy: { kind: 'group', groups: ['berlin'] } }),
      device('c', { pinnedBy: { kind: 'group', groups: ['paris'] } }),
      device('d', { image: 'r.example/web:2' }),
      device('e'),
    ];
    const plan = planRollout(spec({ batchSize: 10 }, ['paris']), 'r.example/web:2', devices);
    expect(plan.excluded).toEqual([
      { id: 'a', reason: 'pinned on the device' },
      { id: 'b', reason: 'pinned by group berlin' },
      { id: 'd', reason: 'already runs r.example/web:2' },
    ]);
    expect(plan.batches[0]!.devices.map((d) => [d.id, d.overGroupPin])).toEqual([
      ['c', true],
      ['e', false],
    ]);
  });

  it('plans nothing for no devices', () => {
    expect(planRollout(spec({ canary: 3 }), 'r.example/web:2', [])).toEqual({
      batches: [],
      excluded: [],
      total: 0,
    });
  });
});

describe('canaryProblem', () => {
  const devices = ['d1', 'd2', 'd3', 'd4'].map((id) => device(id));
  const planned = (canary: number, candidates = devices) =>
    planRollout(spec({ canary }), 'r.example/web:2', candidates);

  it('lets a canary smaller than the devices the rollout changes through (3 of 4)', () => {
    expect(canaryProblem(3, planned(3))).toBeUndefined();
    expect(canaryProblem(0, planned(0))).toBeUndefined();
  });

  it('refuses a canary as large as the devices (4 of 4): it would leave no batch', () => {
    expect(canaryProblem(4, planned(4))).toBe(
      'strategy.canary: 4 must be fewer than the 4 devices the rollout changes (a canary leaves devices for the batches)',
    );
  });

  it('refuses a canary larger than the devices, naming both numbers and those left out', () => {
    const current = device('d5', { image: 'r.example/web:2' });
    expect(canaryProblem(100, planned(100, [...devices, current]))).toBe(
      'strategy.canary: 100 must be fewer than the 4 devices the rollout changes (a canary leaves devices for the batches, 1 left out)',
    );
  });

  it('leaves a rollout with no device to change to its own refusal', () => {
    expect(canaryProblem(5, planned(5, []))).toBeUndefined();
  });
});

describe('emptyPlanProblem', () => {
  it('says nothing of a plan that changes a device', () => {
    expect(emptyPlanProblem('web', planRollout(spec({}), 'r.example/web:2', [device('d1')]))).toBe(
      undefined,
    );
  });

  it('counts why each device was left out', () => {
    const devices = [
      device('d1', { image: 'r.example/web:2' }),
      device('d2', { image: 'r.example/web:2' }),
      device('d3', { pinnedBy: { kind: 'device' } }),
    ];
    expect(emptyPlanProblem('web', planRollout(spec({}), 'r.example/web:2', devices))).toBe(
      'no device to roll web out to: every targeted device is left out (already runs r.example/web:2: 2, pinned on the device: 1)',
    );
  });

  it('says when the targets hold no device that runs the service', () => {
    expect(emptyPlanProblem('web', planRollout(spec({}), 'r.example/web:2', []))).toBe(
      'no device to roll web out to: no targeted device runs web',
    );
  });
});
