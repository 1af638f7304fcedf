import { resolveCount, type DisruptionBudget } from '@podfleet/shared';
import { isDisrupted, type PolicyDeviceState } from './device.js';

export interface BudgetDevice {
  state: PolicyDeviceState;
  online: boolean;
  labels: Readonly<Record<string, string>>;
}

/** Where one group of a disruption budget stands, and how many more of it may start now. */
export interface GroupStanding {
  /** `site=berlin` (or `site=berlin,rack=3`); a missing label reads `site=(none)`. */
  group: string;
  size: number;
  /** Updating, failed or reverting: the rollout's own disruption. */
  disrupted: number;
  offline: number;
  /** Online and not disrupted. */
  available: number;
  maxUnavailable?: number;
  minAvailable?: number;
  /** More devices of the group that may start now (each start makes one available one not). */
  room: number;
  /** The limit that sets `room`, when one does. */
  limitedBy?: 'maxUnavailable' | 'minAvailable';
}

/** The group a device falls in; label values cannot hold `(`, so `(none)` is never a real value. */
export function groupOf(labels: Readonly<Record<string, string>>, groupBy: readonly string[]) {
  return groupBy
    .map((key) => `${key}=${Object.hasOwn(labels, key) ? labels[key] : '(none)'}`)
    .join(',');
}

/**
 * Every group's standing under the budget. maxUnavailable bounds what the rollout disrupts
 * (updating or failed, across batches); minAvailable bounds what is up, so an offline device
 * counts against it too. Percentages round up, as everywhere in a rollout spec. Pass every
 * device the rollout knows, in every batch and state; devices of the groups outside the rollout
 * may be passed as `skipped` so that minAvailable sees them.
 */
export function groupStandings(
  devices: readonly BudgetDevice[],
  budget: DisruptionBudget,
): Map<string, GroupStanding> {
  const counts = new Map<
    string,
    { size: number; disrupted: number; offline: number; available: number }
  >();
  for (const device of devices) {
    const group = groupOf(device.labels, budget.groupBy);
    let count = counts.get(group);
    if (!count) counts.set(group, (count = { size: 0, disrupted: 0, offline: 0, available: 0 }));
    count.size++;
    const disrupted = isDisrupted(device.state);
    if (disrupted) count.disrupted++;
    if (!device.online) count.offline++;
    if (device.online && !disrupted) count.available++;
  }
  const standings = new Map<string, GroupStanding>();
  for (const [group, count] of counts) {
    const standing: GroupStanding = { group, ...count, room: Number.POSITIVE_INFINITY };
    if (budget.maxUnavailable !== undefined) {
      standing.maxUnavailable = resolveCount(budget.maxUnavailable, count.size);
      standing.room = standing.maxUnavailable - count.disrupted;
      standing.limitedBy = 'maxUnavailable';
    }
    if (budget.minAvailable !== undefined) {
      standing.minAvailable = resolveCount(budget.minAvailable, count.size);
      const room = count.available - standing.minAvailable;
      if (room < standing.room) {
        standing.room = room;
        standing.limitedBy = 'minAvailable';
      }
    }
    standing.room = Math.max(0, standing.room);
    standings.set(group, standing);
  }
  return standings;
}

/** Where a group stands against its limit: `2 of 4 updating or failed, maxUnavailable 2`. */
export function describeGroup(standing: GroupStanding): string {
  const { size, disrupted, available, offline } = standing;
  if (standing.limitedBy === 'minAvailable') {
    const away = offline > 0 ? ` (${offline} offline)` : '';
    return `${available} of ${size} available${away}, minAvailable ${standing.minAvailable}`;
  }
  return `${disrupted} of ${size} updating or failed, maxUnavailable ${standing.maxUnavailable}`;
}

/**
 * For `rollout plan`: groups whose minAvailable leaves no device free to update even with every
 * device up, so the rollout could never finish them.
 */
export function blockedGroups(standings: Iterable<GroupStanding>): GroupStanding[] {
  return [...standings].filter((s) => s.minAvailable !== undefined && s.size - s.minAvailable < 1);
}
