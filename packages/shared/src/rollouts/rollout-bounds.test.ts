import { describe, expect, it } from 'vitest';
import { formatIssues } from '../spec/text.js';
import { RolloutSpec, resolveCount, storedRolloutSpec } from './rollout-spec.js';

const base = { service: 'web', image: 'registry.example/web:2', targets: { groups: ['edge'] } };

/** The problems of a spec whose strategy is `strategy`, one line each. */
function problems(strategy: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const parsed = RolloutSpec.safeParse({ ...base, ...extra, strategy });
  return parsed.success ? [] : formatIssues(parsed.error);
}

const policy = (fields: Record<string, unknown>) => ({ policy: fields });
const WEEK = 7 * 86_400;

// Each bound from both sides: the last value accepted, then the first refused.
// prettier-ignore
const BOUNDS: [field: string, accepted: Record<string, unknown>, refused: Record<string, unknown>, message: string][] = [
  ['strategy.batchSize', { batchSize: 1 }, { batchSize: 0 }, 'must be at least 1 (or above 0%)'],
  ['strategy.batchSize', { batchSize: '0.1%' }, { batchSize: '0%' }, 'must be above 0% (or at least 1)'],
  ['strategy.batchSize', { batchSize: '0.1%' }, { batchSize: '0.0%' }, 'must be above 0% (or at least 1)'],
  ['strategy.batchSize', { batchSize: '100%' }, { batchSize: '100.5%' }, 'must be at most 100%'],
  ['strategy.batchSize', { batchSize: '100.0%' }, { batchSize: '100.01%' }, 'must be at most 100%'],
  ['strategy.batchSize', { batchSize: '100%' }, { batchSize: '101%' }, 'must be at most 100%'],
  ['strategy.batchSize', { batchSize: 9_007_199_254_740_991 }, { batchSize: 2 ** 53 }, 'must be a count or a percentage'],
  ['strategy.batchSize', { batchSize: 2 }, { batchSize: 2.5 }, 'must be a count or a percentage'],
  ['strategy.batchSize', { batchSize: '20%' }, { batchSize: '-1%' }, 'must be a count or a percentage'],
  ['strategy.batchSize', { batchSize: '20%' }, { batchSize: '20' }, 'must be a count or a percentage'],
  ['strategy.maxFailures', { maxFailures: 0 }, { maxFailures: -1 }, 'must be at least 0'],
  ['strategy.maxFailures', { maxFailures: '100%' }, { maxFailures: '100.5%' }, 'must be at most 100%'],
  ['strategy.canary', { canary: 0 }, { canary: -1 }, 'strategy.canary'],
  ['strategy.canary', { canary: 3 }, { canary: 1.5 }, 'strategy.canary'],
  ['strategy.healthTimeout', { healthTimeout: WEEK }, { healthTimeout: WEEK + 0.001 }, 'must be at most 168h (7 days)'],
  ['strategy.healthTimeout', { healthTimeout: '168h' }, { healthTimeout: '168h1s' }, 'must be at most 168h (7 days)'],
  ['strategy.healthTimeout', { healthTimeout: WEEK }, { healthTimeout: 1e12 }, 'must be at most 168h (7 days)'],
  ['strategy.healthTimeout', { healthTimeout: 0 }, { healthTimeout: -1 }, 'not a duration'],
  ['strategy.healthTimeout', { healthTimeout: '5m' }, { healthTimeout: `1${'0'.repeat(400)}s` }, 'not a duration'],
  ['strategy.pauseBetweenBatches', { pauseBetweenBatches: '168h' }, { pauseBetweenBatches: '169h' }, 'must be at most 168h (7 days)'],
  ['strategy.policy.bake', policy({ bake: WEEK }), policy({ bake: WEEK + 1 }), 'must be at most 168h (7 days)'],
  ['strategy.policy.bakeBetweenBatches', policy({ bakeBetweenBatches: '10080m' }), policy({ bakeBetweenBatches: '10081m' }), 'must be at most 168h (7 days)'],
  ['strategy.policy.successThreshold', policy({ successThreshold: 1 }), policy({ successThreshold: 0 }), 'must be at least 1 (or above 0%)'],
  ['strategy.policy.successThreshold', policy({ successThreshold: '0.5%' }), policy({ successThreshold: '0%' }), 'must be above 0% (or at least 1)'],
  ['strategy.policy.successThreshold', policy({ successThreshold: '100%' }), policy({ successThreshold: '100.5%' }), 'must be at most 100%'],
  ['strategy.policy.disruptionBudget.minAvailable', policy({ disruptionBudget: { groupBy: ['site'], minAvailable: '100%' } }), policy({ disruptionBudget: { groupBy: ['site'], minAvailable: '100.5%' } }), 'must be at most 100%'],
  ['strategy.policy.disruptionBudget.maxUnavailable', policy({ disruptionBudget: { groupBy: ['site'], maxUnavailable: '100%' } }), policy({ disruptionBudget: { groupBy: ['site'], maxUnavailable: '101%' } }), 'must be at most 100%'],
  ['strategy.policy.abort.failureRate', policy({ abort: { failureRate: '0%' } }), policy({ abort: { failureRate: '-0.5%' } }), 'must be a percentage'],
  ['strategy.policy.abort.failureRate', policy({ abort: { failureRate: '100%' } }), policy({ abort: { failureRate: '100.5%' } }), 'must be at most 100%'],
  ['strategy.policy.abort.failures', policy({ abort: { failures: 1 } }), policy({ abort: { failures: 0 } }), 'strategy.policy.abort.failures'],
  ['strategy.policy.abort.minDevices', policy({ abort: { failures: 1, minDevices: 1 } }), policy({ abort: { failures: 1, minDevices: 0 } }), 'strategy.policy.abort.minDevices'],
  ['strategy.policy.rate.factor', policy({ rate: { kind: 'exponential', start: 1, factor: 100, maxPerMinute: 5 } }), policy({ rate: { kind: 'exponential', start: 1, factor: 100.5, maxPerMinute: 5 } }), 'strategy.policy.rate.factor'],
  ['strategy.policy.rate.start', policy({ rate: { kind: 'exponential', start: 1, factor: 2, maxPerMinute: 5 } }), policy({ rate: { kind: 'exponential', start: 0, factor: 2, maxPerMinute: 5 } }), 'strategy.policy.rate.start'],
];

describe('rollout spec bounds', () => {
  it.each(BOUNDS)('%s: accepts %j, refuses %j', (field, accepted, refused, message) => {
    expect(problems(accepted)).toEqual([]);
    const refusal = problems(refused);
    expect(refusal).toHaveLength(1);
    expect(refusal[0]).toMatch(new RegExp(`^${field.replace(/[.[\]]/g, '\\$&')}: `));
    expect(refusal[0]).toContain(message);
  });

  it('refuses a revision beyond the database’s integer column', () => {
    const spec = { ...base, image: undefined };
    expect(RolloutSpec.safeParse({ ...spec, revision: 2_147_483_647 }).success).toBe(true);
    expect(problems({}, { image: undefined, revision: 2_147_483_648 })).toEqual([
      'revision: Too big: expected number to be <=2147483647',
    ]);
  });

  it('resolves the smallest accepted shares to one device, never to none', () => {
    expect(resolveCount('0.1%', 3)).toBe(1);
    expect(resolveCount('100%', 3)).toBe(3);
  });

  it('reads a stored spec that bounds added since would refuse, as it was stored', () => {
    const stored = {
      ...RolloutSpec.parse(base),
      strategy: { ...RolloutSpec.parse(base).strategy, batchSize: 0, healthTimeout: 1e12 },
    };
    expect(storedRolloutSpec(stored).strategy).toMatchObject({ batchSize: 0, healthTimeout: 1e12 });
    expect(storedRolloutSpec(RolloutSpec.parse(base))).toEqual(RolloutSpec.parse(base));
  });
});
