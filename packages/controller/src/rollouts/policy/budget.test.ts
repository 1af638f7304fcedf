import { RolloutPolicy } from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import {
  blockedGroups,
  describeGroup,
  groupOf,
  groupStandings,
  type BudgetDevice,
} from './budget.js';
import type { PolicyDeviceState } from './device.js';

const budgetOf = (budget: object) =>
  RolloutPolicy.parse({ disruptionBudget: budget }).disruptionBudget!;

function device(site: string | undefined, state: PolicyDeviceState, online = true): BudgetDevice {
  return { state, online, labels: site === undefined ? {} : { site } };
}

describe('groupOf', () => {
  it('joins the groupBy labels; a missing label is its own group', () => {
    expect(groupOf({ site: 'berlin', rack: '3' }, ['site', 'rack'])).toBe('site=berlin,rack=3');
    expect(groupOf({ rack: '3' }, ['site'])).toBe('site=(none)');
    expect(groupOf({ site: '' }, ['site'])).toBe('site=');
  });
});

describe('groupStandings', () => {
  it('counts updating, failed and reverting against maxUnavailable, per group', () => {
    const standings = groupStandings(
      [
        device('berlin', 'updating'),
        device('berlin', 'failed'),
        device('berlin', 'pending'),
        device('berlin', 'pending'),
        device('paris', 'reverting'),
        device('paris', 'succeeded'),
        device('paris', 'pending', false),
      ],
      budgetOf({ groupBy: ['site'], maxUnavailable: 2 }),
    );
    expect(standings.get('site=berlin')).toMatchObject({
      size: 4,
      disrupted: 2,
      available: 2,
      room: 0,
      limitedBy: 'maxUnavailable',
    });
    // An offline device is no disruption of the rollout's: maxUnavailable does not count it.
    expect(standings.get('site=paris')).toMatchObject({ disrupted: 1, offline: 1, room: 1 });
  });

  it('counts offline devices against minAvailable, and the tighter limit wins', () => {
    const devices = [
      device('a', 'succeeded'),
      device('a', 'pending'),
      device('a', 'pending'),
      device('a', 'pending', false),
      device('a', 'skipped', false),
    ];
    const standing = groupStandings(
      devices,
      budgetOf({ groupBy: ['site'], maxUnavailable: '60%', minAvailable: 2 }),
    ).get('site=a')!;
    expect(standing).toMatchObject({
      maxUnavailable: 3,
      minAvailable: 2,
      available: 3,
      room: 1,
      limitedBy: 'minAvailable',
    });
    expect(describeGroup(standing)).toBe('3 of 5 available (2 offline), minAvailable 2');
  });

  it('rounds percentages up: 10% of 3 devices is one', () => {
    const standing = groupStandings(
      [device('a', 'pending'), device('a', 'pending'), device('a', 'pending')],
      budgetOf({ groupBy: ['site'], maxUnavailable: '10%' }),
    ).get('site=a')!;
    expect(standing).toMatchObject({ maxUnavailable: 1, room: 1 });
    expect(describeGroup(standing)).toBe('0 of 3 updating or failed, maxUnavailable 1');
  });

  it('never gives negative room when a group is already over its budget', () => {
    const standing = groupStandings(
      [device('a', 'failed'), device('a', 'failed'), device('a', 'pending')],
      budgetOf({ groupBy: ['site'], maxUnavailable: 1 }),
    ).get('site=a')!;
    expect(standing.room).toBe(0);
  });

  it('finds groups whose minAvailable no update can ever satisfy', () => {
    const standings = groupStandings(
      [
        device('a', 'pending'),
        device('a', 'pending'),
        device('a', 'pending'),
        device('b', 'pending'),
      ],
      budgetOf({ groupBy: ['site'], minAvailable: 2 }),
    );
    expect(blockedGroups(standings.values()).map((s) => s.group)).toEqual(['site=b']);
  });
});
