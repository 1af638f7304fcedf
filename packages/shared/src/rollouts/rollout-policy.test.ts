import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatIssues } from '../spec/text.js';
import { RolloutPolicy, isTimeZone, parseWindowSchedule } from './rollout-policy.js';
import { RolloutSpec } from './rollout-spec.js';

const spec = (policy: unknown) => ({
  service: 'web',
  image: 'registry.example/web:2',
  targets: { groups: ['edge'] },
  strategy: { policy },
});

function problems(policy: unknown): string[] {
  const parsed = RolloutSpec.safeParse(spec(policy));
  return parsed.success ? [] : formatIssues(parsed.error);
}

describe('RolloutPolicy', () => {
  it('fills in defaults and leaves the strategy without a policy unchanged', () => {
    expect(RolloutPolicy.parse({})).toEqual({ bake: 60, rate: { kind: 'fixed' }, windows: [] });
    const plain = RolloutSpec.parse(spec(undefined));
    expect(plain.strategy.policy).toBeUndefined();
  });

  it('parses every part, and its output parses again to itself (the engine stores it)', () => {
    const input = {
      successThreshold: '90%',
      bake: '2m',
      bakeBetweenBatches: '10m',
      disruptionBudget: { groupBy: ['site'], maxUnavailable: 1, minAvailable: '50%' },
      rate: { kind: 'exponential', start: 2, factor: 2, maxPerMinute: 50 },
      windows: [
        { match: { site: 'berlin' }, schedule: 'Mon-Fri 01:00-05:00', timeZone: 'Europe/Berlin' },
        { selector: 'tier in (gw)', schedule: 'Fri 22:00-02:00', timeZone: 'America/New_York' },
      ],
      approval: { after: ['canary', 2] },
      abort: { failures: 3, failureRate: '10%', minDevices: 20, onAbort: 'halt' },
      offlineDevices: 'defer',
    };
    const parsed = RolloutSpec.parse(spec(input));
    const policy = parsed.strategy.policy!;
    expect(policy.bake).toBe(120);
    expect(policy.bakeBetweenBatches).toBe(600);
    expect(policy.rate).toEqual({ kind: 'exponential', start: 2, factor: 2, maxPerMinute: 50 });
    expect(policy.abort).toEqual({
      failures: 3,
      failureRate: '10%',
      minDevices: 20,
      onAbort: 'halt',
    });
    expect(RolloutSpec.parse(JSON.parse(JSON.stringify(parsed)))).toEqual(parsed);
  });

  it('defaults abort to revert after one device', () => {
    expect(RolloutPolicy.parse({ abort: { failures: 1 } }).abort).toEqual({
      failures: 1,
      minDevices: 1,
      onAbort: 'revert',
    });
  });

  // prettier-ignore
  it.each([
    [{ successThreshold: '120%' }, 'strategy.policy.successThreshold'],
    [{ bake: 'soon' }, 'strategy.policy.bake: not a duration'],
    [{ disruptionBudget: { groupBy: ['site'] } }, 'strategy.policy.disruptionBudget: give maxUnavailable, minAvailable or both'],
    [{ disruptionBudget: { groupBy: [], maxUnavailable: 1 } }, 'strategy.policy.disruptionBudget.groupBy: name at least one label key'],
    [{ disruptionBudget: { groupBy: ['site'], maxUnavailable: '0%' } }, 'strategy.policy.disruptionBudget.maxUnavailable: must let at least one device update'],
    [{ disruptionBudget: { groupBy: ['site'], maxUnavailable: 0 } }, 'strategy.policy.disruptionBudget.maxUnavailable: must let at least one device update'],
    [{ disruptionBudget: { groupBy: ['si te'], maxUnavailable: 1 } }, 'strategy.policy.disruptionBudget.groupBy[0]: not a label key'],
    [{ rate: { kind: 'exponential', start: 5, factor: 2, maxPerMinute: 2 } }, 'strategy.policy.rate.maxPerMinute: must be at least start'],
    [{ rate: { kind: 'linear' } }, 'strategy.policy.rate'],
    [{ windows: [{ schedule: 'Mon-Fri 1-5', timeZone: 'UTC' }] }, 'strategy.policy.windows[0].schedule: expected "[DAYS] HH:MM-HH:MM"'],
    [{ windows: [{ schedule: 'Mon-Fry 01:00-05:00', timeZone: 'UTC' }] }, 'strategy.policy.windows[0].schedule: not a day or day range: "Mon-Fry"'],
    [{ windows: [{ schedule: '01:00-01:00', timeZone: 'UTC' }] }, 'strategy.policy.windows[0].schedule: window opens and closes at once'],
    [{ windows: [{ schedule: '01:00-05:00', timeZone: 'Europe/Berlinn' }] }, 'strategy.policy.windows[0].timeZone: not an IANA time zone'],
    [{ windows: [{ selector: 'a=b', match: { a: 'b' }, schedule: '01:00-05:00', timeZone: 'UTC' }] }, 'strategy.policy.windows[0].match: give selector or match, not both'],
    [{ approval: { after: ['canary', 'last'] } }, 'strategy.policy.approval.after[1]'],
    [{ approval: { after: [] } }, 'strategy.policy.approval.after'],
    [{ abort: { minDevices: 5 } }, 'strategy.policy.abort: give failures, failureRate or both'],
    [{ abort: { failureRate: 10 } }, 'strategy.policy.abort.failureRate'],
    [{ abort: { failures: 1, onAbort: 'panic' } }, 'strategy.policy.abort.onAbort'],
    [{ offlineDevices: 'ignore' }, 'strategy.policy.offlineDevices'],
    [{ surprise: true }, 'strategy.policy'],
  ])('rejects %j naming the field', (policy, expected) => {
    expect(problems(policy).join('\n')).toContain(expected);
  });
});

describe('parseWindowSchedule', () => {
  const days = (text: string) => {
    const parsed = parseWindowSchedule(text);
    if (!parsed.ok) throw new Error(parsed.message);
    return parsed.schedule.days.flatMap((open, day) => (open ? [day] : []));
  };

  it('reads day lists, ranges that wrap, and every day', () => {
    expect(days('Mon-Fri 01:00-05:00')).toEqual([1, 2, 3, 4, 5]);
    expect(days('sat,SUN 00:00-24:00')).toEqual([0, 6]);
    expect(days('Fri-Mon 22:00-02:00')).toEqual([0, 1, 5, 6]);
    expect(days('Mon,Wed-Thu 03:00-04:00')).toEqual([1, 3, 4]);
    expect(days('* 03:00-04:00')).toHaveLength(7);
    expect(days('03:00-04:00')).toHaveLength(7);
  });

  it('keeps the minutes; an end before the start crosses midnight', () => {
    expect(parseWindowSchedule('Fri 22:30-02:15')).toMatchObject({
      ok: true,
      schedule: { start: 22 * 60 + 30, end: 2 * 60 + 15 },
    });
    expect(parseWindowSchedule('00:00-24:00')).toMatchObject({ ok: true });
  });

  it.each(['25:00-26:00', '01:60-02:00', '01:00-24:30', 'Mon-Tue-Wed 01:00-02:00', ''])(
    'rejects %j',
    (text) => expect(parseWindowSchedule(text).ok).toBe(false),
  );
});

describe('isTimeZone', () => {
  it('knows IANA names through Intl', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('UTC')).toBe(true);
    expect(isTimeZone('Mars/Olympus_Mons')).toBe(false);
  });
});

describe('RolloutSpec with a policy as JSON Schema (the API documents it)', () => {
  it('converts, policy included', () => {
    const schema = JSON.stringify(
      z.toJSONSchema(RolloutSpec, { io: 'input', unrepresentable: 'any' }),
    );
    expect(schema).toContain('disruptionBudget');
    expect(schema).toContain('maxPerMinute');
  });
});
