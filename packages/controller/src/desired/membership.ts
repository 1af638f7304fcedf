import { matchesSelector, type Selector } from './selector.js';

/** What membership looks at in a device. */
export interface LabeledDevice {
  readonly id: string;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * A group: the devices its selector matches, plus the ones it lists. A group without a selector
 * (or with the empty one, which matches nothing) holds only its members.
 */
export interface Group {
  readonly name: string;
  /** Higher wins: its revisions and pins beat those of lower-priority groups. */
  readonly priority: number;
  readonly selector?: Selector;
  readonly members?: readonly string[];
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Groups by priority, highest first, then by name: the order every answer here is given in. */
export function rankGroups<T extends Group>(groups: readonly T[]): T[] {
  const seen = new Set<string>();
  for (const group of groups) {
    if (seen.has(group.name)) throw new Error(`groups: duplicate group ${group.name}`);
    seen.add(group.name);
  }
  return [...groups].sort((a, b) => b.priority - a.priority || byText(a.name, b.name));
}

/** The groups a device belongs to (selector match or listed member), highest priority first. */
export function groupsOf<T extends Group>(device: LabeledDevice, groups: readonly T[]): T[] {
  return rankGroups(groups).filter(
    (group) =>
      group.members?.includes(device.id) === true ||
      (group.selector !== undefined && matchesSelector(group.selector, device.labels)),
  );
}

/**
 * groupsOf for every device: device id → its groups, highest priority first. Explicit members are
 * indexed once, so the work is one selector match per device and group plus the member lists.
 */
export function membership<T extends Group>(
  devices: readonly LabeledDevice[],
  groups: readonly T[],
): Map<string, T[]> {
  const ranked = rankGroups(groups);
  const listedIn = new Map<string, Set<number>>();
  ranked.forEach((group, rank) => {
    for (const id of group.members ?? []) {
      const ranks = listedIn.get(id);
      if (ranks) ranks.add(rank);
      else listedIn.set(id, new Set([rank]));
    }
  });
  const result = new Map<string, T[]>();
  for (const device of devices) {
    const ranks = listedIn.get(device.id);
    const mine: T[] = [];
    for (let rank = 0; rank < ranked.length; rank++) {
      const group = ranked[rank]!;
      if (
        ranks?.has(rank) === true ||
        (group.selector !== undefined && matchesSelector(group.selector, device.labels))
      ) {
        mine.push(group);
      }
    }
    result.set(device.id, mine);
  }
  return result;
}
