import { formatIssues } from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import { Labels } from './labels.js';
import { groupsOf, membership, rankGroups, type Group, type LabeledDevice } from './membership.js';
import { parseSelector, type Selector } from './selector.js';

function selector(text: string): Selector {
  const result = parseSelector(text);
  if (!result.ok) throw new Error(result.error);
  return result.selector;
}

const names = (groups: readonly Group[]) => groups.map((group) => group.name);

const berlin: LabeledDevice = { id: 'dev-1', labels: { site: 'berlin', tier: 'edge' } };
const paris: LabeledDevice = { id: 'dev-2', labels: { site: 'paris', tier: 'gw', canary: '' } };
const bare: LabeledDevice = { id: 'dev-3', labels: {} };

const groups: Group[] = [
  { name: 'all-edge', priority: 0, selector: selector('tier in (edge,gw)') },
  { name: 'berlin', priority: 10, selector: selector('site=berlin') },
  { name: 'canaries', priority: 20, selector: selector('canary') },
  { name: 'lab', priority: 10, members: ['dev-3', 'dev-1'] },
  { name: 'stable', priority: 5, selector: selector('!canary'), members: ['dev-2'] },
  { name: 'nobody', priority: 50, selector: selector('') },
];

describe('groupsOf', () => {
  it('finds groups by selector and by explicit member, highest priority first, then by name', () => {
    expect(names(groupsOf(berlin, groups))).toEqual(['berlin', 'lab', 'stable', 'all-edge']);
    expect(names(groupsOf(paris, groups))).toEqual(['canaries', 'stable', 'all-edge']);
    expect(names(groupsOf(bare, groups))).toEqual(['lab', 'stable']);
  });

  it('lists a device once when both its labels and the member list put it in a group', () => {
    const both: Group = {
      name: 'both',
      priority: 1,
      selector: selector('site'),
      members: ['dev-1'],
    };
    expect(names(groupsOf(berlin, [both]))).toEqual(['both']);
  });

  it('an empty selector holds nobody; members are still members', () => {
    const listed: Group = {
      name: 'listed',
      priority: 0,
      selector: selector(''),
      members: ['dev-3'],
    };
    expect(names(groupsOf(bare, [listed]))).toEqual(['listed']);
    expect(names(groupsOf(berlin, [listed]))).toEqual([]);
  });

  it('does not depend on the order groups come in', () => {
    const reversed = [...groups].reverse();
    expect(groupsOf(berlin, reversed)).toEqual(groupsOf(berlin, groups));
  });

  it('refuses two groups of one name', () => {
    expect(() => rankGroups([groups[0]!, { ...groups[1]!, name: 'all-edge' }])).toThrow(
      'groups: duplicate group all-edge',
    );
  });
});

/** A small deterministic generator (mulberry32) so the fleet below is the same on every run. */
function random(seed: number) {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fleet(deviceCount: number, groupCount: number, seed: number) {
  const next = random(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const sites = ['berlin', 'paris', 'oslo', 'rome'];
  const tiers = ['edge', 'gw', 'core'];
  const devices: LabeledDevice[] = Array.from({ length: deviceCount }, (_, index) => {
    const labels: Record<string, string> = { site: pick(sites), tier: pick(tiers) };
    if (next() < 0.1) labels.canary = 'yes';
    return { id: `dev-${index}`, labels };
  });
  const shapes = [
    () => `site=${pick(sites)}`,
    () => `tier in (${pick(tiers)},${pick(tiers)})`,
    () => `site!=${pick(sites)},!canary`,
    () => `tier notin (${pick(tiers)}),canary`,
  ];
  const fleetGroups: Group[] = Array.from({ length: groupCount }, (_, index) => ({
    name: `g${index}`,
    priority: Math.floor(next() * 5),
    selector: next() < 0.8 ? selector(pick(shapes)()) : undefined,
    members: Array.from({ length: Math.floor(next() * 20) }, () => pick(devices).id),
  }));
  return { devices, groups: fleetGroups };
}

describe('membership', () => {
  it('gives every device the same groups as groupsOf does', () => {
    const { devices, groups: fleetGroups } = fleet(300, 40, 7);
    const all = membership(devices, fleetGroups);
    expect(all.size).toBe(300);
    for (const device of devices) {
      expect(names(all.get(device.id)!)).toEqual(names(groupsOf(device, fleetGroups)));
    }
  });

  it('answers for 10,000 devices and 100 groups', () => {
    const { devices, groups: fleetGroups } = fleet(10_000, 100, 11);
    const all = membership(devices, fleetGroups);
    expect(all.size).toBe(10_000);
    const sample = devices[4242]!;
    expect(all.get(sample.id)).toEqual(groupsOf(sample, fleetGroups));
    const total = [...all.values()].reduce((sum, mine) => sum + mine.length, 0);
    expect(total).toBeGreaterThan(10_000);
  });

  it('gives a device its explicit groups even when several list it', () => {
    const listed: Group[] = [
      { name: 'a', priority: 1, members: ['dev-9'] },
      { name: 'b', priority: 2, members: ['dev-9', 'dev-9'] },
    ];
    const all = membership([{ id: 'dev-9', labels: {} }], listed);
    expect(names(all.get('dev-9')!)).toEqual(['b', 'a']);
  });
});

describe('Labels', () => {
  it('accepts Kubernetes-style labels and names the bad key or value', () => {
    expect(Labels.safeParse({ site: 'berlin', 'example.com/tier': 'edge', flag: '' }).success).toBe(
      true,
    );
    const bad = Labels.safeParse({ site: 'ber lin' });
    expect(formatIssues(bad.error!)).toEqual([
      'site: value must be alphanumeric at both ends, with -, _ or . inside',
    ]);
    expect(Labels.safeParse({ '-site': 'x' }).success).toBe(false);
  });
});
