import { RolloutPolicy, type RolloutPolicyInput } from '@podfleet/shared';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admit } from './admit.js';
import { groupOf, groupStandings } from './budget.js';
import { isDisrupted, type PolicyDevice, type PolicyDeviceState } from './device.js';
import { emptyBatchCounts, judgeBatch, type BatchCounts } from './success.js';
import { compileWindows, deviceWindow } from './windows.js';

/** A seeded PRNG (mulberry32): the simulations are random but the same on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface SimDevice extends PolicyDevice {
  /** Ticks from its start to its result. */
  takes: number;
  fails: boolean;
  /** The tick it comes online at (undefined: never, when it starts offline). */
  returnsAt?: number;
}

interface Fleet {
  sites: string[];
  perSite: number;
  batchSize: number;
  offlineShare?: number;
  failShare?: number;
  returnsAfter?: number;
  seed: number;
}

function makeFleet(fleet: Fleet): SimDevice[] {
  const next = random(fleet.seed);
  const devices: SimDevice[] = [];
  for (let i = 0; i < fleet.perSite; i++)
    for (const site of fleet.sites) {
      const offline = next() < (fleet.offlineShare ?? 0);
      const index = devices.length;
      const device: SimDevice = {
        id: `${site}-${i}`,
        batch: Math.floor(index / fleet.batchSize),
        state: 'pending',
        online: !offline,
        labels: { site },
        takes: 1 + Math.floor(next() * 6),
        fails: next() < (fleet.failShare ?? 0),
      };
      if (offline && fleet.returnsAfter !== undefined) device.returnsAt = fleet.returnsAfter;
      devices.push(device);
    }
  return devices;
}

interface SimResult {
  ticks: number;
  finished: boolean;
  devices: SimDevice[];
  /** Problems the invariants found, tick by tick. */
  violations: string[];
  holdKinds: Set<string>;
}

const START = Date.parse('2026-12-01T00:00:00Z');

/** Drives a rollout with admit and judgeBatch, as tick will: one pass per 10 s of fake clock. */
function simulate(
  devices: SimDevice[],
  policyInput: RolloutPolicyInput,
  maxTicks = 2000,
  TICK = 10_000,
) {
  const policy = RolloutPolicy.parse(policyInput);
  const windows = compileWindows(policy.windows).windows;
  const batchCount = Math.max(...devices.map((d) => d.batch)) + 1;
  const threshold = { successThreshold: policy.successThreshold ?? '100%' };
  const result: SimResult = {
    ticks: 0,
    finished: false,
    devices,
    violations: [],
    holdKinds: new Set(),
  };
  let currentBatch = 0;
  let previousBatchDoneAt: number | undefined;
  for (let tick = 0; tick < maxTicks; tick++) {
    const now = START + tick * TICK;
    result.ticks = tick;
    for (const device of devices) {
      if (device.returnsAt !== undefined && tick >= device.returnsAt) device.online = true;
      if (
        device.state === 'updating' &&
        device.online &&
        now >= device.switchedAt! + device.takes * TICK
      )
        device.state = device.fails ? 'failed' : 'succeeded';
    }
    // The current batch done? Then open the next one, as tick will.
    for (;;) {
      const verdict = judgeBatch(
        countsOf(devices.filter((d) => d.batch === currentBatch)),
        threshold,
      );
      if (verdict.outcome === 'failed') {
        result.violations.push(`batch ${currentBatch} failed`);
        return result;
      }
      if (verdict.outcome !== 'succeeded') break;
      if (currentBatch + 1 >= batchCount) {
        result.finished = true;
        return result;
      }
      currentBatch++;
      previousBatchDoneAt = now;
    }
    const admission = admit({
      now,
      devices,
      currentBatch,
      ...(previousBatchDoneAt !== undefined ? { previousBatchDoneAt } : {}),
      bakeBetweenBatches: policy.bakeBetweenBatches ?? 0,
      approvalPoints: new Set(),
      approved: new Set(),
      windows,
      ...(policy.disruptionBudget ? { budget: policy.disruptionBudget } : {}),
      rate: policy.rate,
      offlineDevices: policy.offlineDevices ?? 'wait',
    });
    for (const hold of admission.held.values()) result.holdKinds.add(hold.kind);
    const byId = new Map(devices.map((d) => [d.id, d]));
    for (const id of admission.start) {
      const device = byId.get(id)!;
      if (!deviceWindow(windows, device.labels, now).open)
        result.violations.push(`${tick}: ${id} started outside its window`);
      device.state = 'updating';
      device.switchedAt = now;
    }
    for (const id of admission.skip) byId.get(id)!.state = 'skipped';
    for (const id of admission.defer) byId.get(id)!.state = 'deferred';
    result.violations.push(...budgetViolations(devices, policy, admission.start, tick));
  }
  return result;
}

function countsOf(batch: readonly SimDevice[]): BatchCounts {
  const counts = emptyBatchCounts();
  for (const d of batch) {
    if (d.state === 'succeeded') counts.succeeded++;
    else if (d.state === 'failed') counts.failed++;
    else if (d.state === 'skipped') counts.skipped++;
    else if (d.state === 'deferred') counts.deferred++;
    else if (!d.online) counts.offline++;
    else if (d.state === 'updating') counts.inFlight++;
    else counts.held++;
  }
  return counts;
}

/** After admission: no group over maxUnavailable; none that just started a device below minAvailable. */
function budgetViolations(
  devices: readonly PolicyDevice[],
  policy: RolloutPolicy,
  started: readonly string[],
  tick: number,
): string[] {
  const budget = policy.disruptionBudget;
  if (!budget) return [];
  const startedGroups = new Set(
    devices.filter((d) => started.includes(d.id)).map((d) => groupOf(d.labels, budget.groupBy)),
  );
  const problems: string[] = [];
  for (const standing of groupStandings(devices, budget).values()) {
    if (standing.maxUnavailable !== undefined && standing.disrupted > standing.maxUnavailable)
      problems.push(`${tick}: ${standing.group} has ${standing.disrupted} unavailable`);
    if (
      standing.minAvailable !== undefined &&
      startedGroups.has(standing.group) &&
      standing.available < standing.minAvailable
    )
      problems.push(`${tick}: ${standing.group} has ${standing.available} available`);
  }
  return problems;
}

const stateCount = (devices: readonly SimDevice[], state: PolicyDeviceState) =>
  devices.filter((d) => d.state === state).length;

describe('a fleet under a disruption budget, over many ticks', () => {
  it('never has more than maxUnavailable of a site updating or failed, and finishes', () => {
    const devices = makeFleet({
      sites: ['berlin', 'paris', 'nyc', 'tokyo'],
      perSite: 25,
      batchSize: 30,
      failShare: 0.02,
      seed: 1,
    });
    const result = simulate(devices, {
      successThreshold: '75%',
      disruptionBudget: { groupBy: ['site'], maxUnavailable: 3 },
    });
    expect(result.violations).toEqual([]);
    expect(result.finished).toBe(true);
    expect(result.holdKinds).toContain('budget');
    expect(stateCount(devices, 'succeeded') + stateCount(devices, 'failed')).toBe(100);
  });

  it('keeps minAvailable per site with offline devices among them', () => {
    const devices = makeFleet({
      sites: ['a', 'b', 'c'],
      perSite: 20,
      batchSize: 60,
      offlineShare: 0.1,
      returnsAfter: 40,
      seed: 2,
    });
    const result = simulate(devices, {
      disruptionBudget: { groupBy: ['site'], minAvailable: '80%', maxUnavailable: 5 },
    });
    expect(result.violations).toEqual([]);
    expect(result.finished).toBe(true);
    expect(stateCount(devices, 'succeeded')).toBe(60);
  });

  it('holds across batches: failed devices of a batch keep using their site’s budget', () => {
    const devices = makeFleet({
      sites: ['a', 'b'],
      perSite: 10,
      batchSize: 4,
      failShare: 0.15,
      seed: 3,
    });
    const result = simulate(devices, {
      successThreshold: '50%',
      disruptionBudget: { groupBy: ['site'], maxUnavailable: 2 },
    });
    expect(result.violations.filter((v) => !v.startsWith('batch'))).toEqual([]);
    // Failed devices stay unavailable: no site ever holds more than its budget of them, and a
    // rollout that stops stops because failures filled a site's budget.
    for (const site of ['a', 'b']) {
      const failed = devices.filter((d) => d.labels.site === site && d.state === 'failed');
      expect(failed.length).toBeLessThanOrEqual(2);
    }
    if (!result.finished)
      expect(
        ['a', 'b'].some(
          (site) =>
            devices.filter((d) => d.labels.site === site && d.state === 'failed').length === 2,
        ),
      ).toBe(true);
  });

  it('with an exponential rate, starts no more per minute than the rate allows', () => {
    const devices = makeFleet({ sites: ['a', 'b'], perSite: 50, batchSize: 100, seed: 4 });
    const result = simulate(devices, {
      rate: { kind: 'exponential', start: 2, factor: 2, maxPerMinute: 16 },
      disruptionBudget: { groupBy: ['site'], maxUnavailable: '50%' },
    });
    expect(result.finished).toBe(true);
    const perMinute = new Map<number, number>();
    const first = Math.min(...devices.map((d) => d.switchedAt!));
    for (const d of devices) {
      const minute = Math.floor((d.switchedAt! - first) / 60_000);
      perMinute.set(minute, (perMinute.get(minute) ?? 0) + 1);
    }
    expect(Math.max(...perMinute.values())).toBeLessThanOrEqual(16);
    expect(perMinute.get(0)).toBe(2);
  });

  it('starts devices only inside their windows, across time zones', () => {
    const devices = makeFleet({
      sites: ['berlin', 'nyc', 'free'],
      perSite: 10,
      batchSize: 10,
      seed: 5,
    });
    const result = simulate(
      devices,
      {
        windows: [
          { match: { site: 'berlin' }, schedule: '03:00-04:00', timeZone: 'Europe/Berlin' },
          { match: { site: 'nyc' }, schedule: 'Mon-Fri 22:00-01:00', timeZone: 'America/New_York' },
        ],
        disruptionBudget: { groupBy: ['site'], maxUnavailable: 4 },
      },
      5_000,
      60_000,
    );
    expect(result.violations).toEqual([]);
    expect(result.finished).toBe(true);
    expect(result.holdKinds).toContain('window');
  });
});

describe('20% offline devices never stall a rollout', () => {
  const fleet = {
    sites: ['a', 'b', 'c', 'd'],
    perSite: 25,
    batchSize: 20,
    offlineShare: 0.2,
    seed: 6,
  };
  const budget = { groupBy: ['site'], maxUnavailable: 2 };

  it('skip: they leave the rollout, which finishes with the others', () => {
    const devices = makeFleet(fleet);
    const offline = devices.filter((d) => !d.online).length;
    expect(offline).toBeGreaterThan(10);
    const result = simulate(devices, { offlineDevices: 'skip', disruptionBudget: budget });
    expect(result.finished).toBe(true);
    expect(stateCount(devices, 'skipped')).toBe(offline);
    expect(stateCount(devices, 'failed')).toBe(0);
  });

  it('defer: they leave the batch count; the rollout finishes while they are away', () => {
    const devices = makeFleet(fleet);
    const result = simulate(devices, { offlineDevices: 'defer', disruptionBudget: budget });
    expect(result.finished).toBe(true);
    expect(stateCount(devices, 'deferred')).toBeGreaterThan(10);
    expect(stateCount(devices, 'failed')).toBe(0);
  });

  it('defer: devices that return during the rollout are updated under the budget', () => {
    const devices = makeFleet({ ...fleet, returnsAfter: 10 });
    const deferred = devices.filter((d) => !d.online).map((d) => d.id);
    const result = simulate(devices, { offlineDevices: 'defer', disruptionBudget: budget });
    expect(result.violations).toEqual([]);
    expect(result.finished).toBe(true);
    expect(result.ticks).toBeGreaterThan(10);
    const states = new Set(devices.filter((d) => deferred.includes(d.id)).map((d) => d.state));
    expect(states).toEqual(new Set(['succeeded']));
  });

  it('wait: offline devices count as offline, take no budget, and a threshold below 80% goes on', () => {
    const devices = makeFleet({ ...fleet, offlineShare: 0 });
    devices.forEach((d, i) => (d.online = i % 5 !== 0)); // exactly one in five, in every batch
    const result = simulate(devices, {
      offlineDevices: 'wait',
      successThreshold: '80%',
      disruptionBudget: budget,
    });
    expect(result.finished).toBe(true);
    expect(stateCount(devices, 'pending')).toBe(20);
    expect(stateCount(devices, 'failed')).toBe(0);
    expect(result.holdKinds).toContain('offline');
  });

  it('wait: with a threshold that needs them, the batch waits for them and finishes when they return', () => {
    const devices = makeFleet({ ...fleet, returnsAfter: 200 });
    const result = simulate(devices, { offlineDevices: 'wait', disruptionBudget: budget });
    expect(result.finished).toBe(true);
    expect(result.ticks).toBeGreaterThanOrEqual(200);
    expect(stateCount(devices, 'succeeded')).toBe(100);
  });
});

const STATES: PolicyDeviceState[] = [
  'pending',
  'updating',
  'succeeded',
  'failed',
  'skipped',
  'deferred',
  'reverting',
];

describe('admit, for random fleets', () => {
  const arbitraryDevice = fc.record({
    site: fc.constantFrom('a', 'b', 'c', 'd'),
    batch: fc.integer({ min: 0, max: 3 }),
    state: fc.constantFrom(...STATES),
    online: fc.boolean(),
  });
  const countOrPercent = fc.oneof(
    fc.integer({ min: 1, max: 6 }),
    fc.integer({ min: 1, max: 100 }).map((n) => `${n}%`),
  );
  const arbitraryBudget = fc
    .record({
      max: fc.option(countOrPercent, { nil: undefined }),
      min: fc.option(countOrPercent, { nil: undefined }),
    })
    .filter((b) => b.max !== undefined || b.min !== undefined);

  it('never exceeds the budget, and every candidate is started, skipped, deferred or held', () => {
    fc.assert(
      fc.property(
        fc.array(arbitraryDevice, { maxLength: 60 }),
        arbitraryBudget,
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom('wait', 'skip', 'defer') as fc.Arbitrary<'wait' | 'skip' | 'defer'>,
        (raw, limits, currentBatch, offlineDevices) => {
          const devices: PolicyDevice[] = raw.map((d, i) => ({
            id: `d${i}`,
            batch: d.batch,
            state: d.state,
            online: d.online,
            labels: { site: d.site },
          }));
          const budget = RolloutPolicy.parse({
            disruptionBudget: {
              groupBy: ['site'],
              maxUnavailable: limits.max,
              minAvailable: limits.min,
            },
          }).disruptionBudget!;
          const before = groupStandings(devices, budget);
          const admission = admit({
            now: START,
            devices,
            currentBatch,
            bakeBetweenBatches: 0,
            approvalPoints: new Set(),
            approved: new Set(),
            windows: [],
            budget,
            rate: { kind: 'fixed' },
            offlineDevices,
          });
          const started = new Set(admission.start);
          expect(started.size).toBe(admission.start.length);
          const after = devices.map((d) =>
            started.has(d.id) ? { ...d, state: 'updating' as const } : d,
          );
          for (const standing of groupStandings(after, budget).values()) {
            const was = before.get(standing.group)!;
            const n = standing.disrupted - was.disrupted;
            if (n === 0) continue;
            if (standing.maxUnavailable !== undefined)
              expect(standing.disrupted).toBeLessThanOrEqual(standing.maxUnavailable);
            if (standing.minAvailable !== undefined)
              expect(standing.available).toBeGreaterThanOrEqual(standing.minAvailable);
          }
          const candidates = devices.filter(
            (d) => d.batch <= currentBatch && (d.state === 'deferred' || d.state === 'pending'),
          );
          const decided = [
            ...admission.start,
            ...admission.skip,
            ...admission.defer,
            ...admission.held.keys(),
          ];
          expect(decided.sort()).toEqual(candidates.map((d) => d.id).sort());
          for (const id of started) {
            const device = devices.find((d) => d.id === id)!;
            expect(device.online).toBe(true);
            expect(isDisrupted(device.state)).toBe(false);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
