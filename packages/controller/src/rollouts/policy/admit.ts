import type { DisruptionBudget, OfflinePolicy, RolloutRate } from '@podfleet/shared';
import { missingApproval } from './approval.js';
import { describeGroup, groupOf, groupStandings, type GroupStanding } from './budget.js';
import type { PolicyDevice } from './device.js';
import { rateRoom } from './rate.js';
import { deviceWindow, formatInZone, type CompiledWindow, type WindowOpenings } from './windows.js';

/** Why a device that could start does not start now: what `rollout watch` and the dashboard show. */
export type Hold =
  | { kind: 'approval'; afterBatch: number }
  | { kind: 'bake'; until: number }
  | { kind: 'window'; window: string; timeZone: string; until: number | undefined }
  | { kind: 'offline' }
  | { kind: 'offline-deferred' }
  | { kind: 'budget'; group: string; standing: GroupStanding }
  | { kind: 'rate'; until: number; perMinute: number };

export interface AdmissionInput {
  now: number;
  /** Every device of the rollout, in plan order (canary first, then by batch). */
  devices: readonly PolicyDevice[];
  /** The batch being worked on: its pending devices start once its gates open. */
  currentBatch: number;
  /** When the batch before it succeeded: bakeBetweenBatches counts from then. */
  previousBatchDoneAt?: number;
  /** Seconds to wait after a batch (policy.bakeBetweenBatches, else pauseBetweenBatches). */
  bakeBetweenBatches: number;
  approvalPoints: ReadonlySet<number>;
  /** Batches after which an operator approved. */
  approved: ReadonlySet<number>;
  windows: readonly CompiledWindow[];
  budget?: DisruptionBudget;
  rate: RolloutRate;
  offlineDevices: OfflinePolicy;
}

export interface Admission {
  /** Point these at the new image now (→ updating), in this order. */
  start: string[];
  /** Offline under `skip`: left out of the rollout. */
  skip: string[];
  /** Offline under `defer`: out of the batch count, started when they return. */
  defer: string[];
  /** Every candidate that does not start now, with the reason. */
  held: Map<string, Hold>;
}

/**
 * Which devices start now. Candidates are the pending devices of the current batch (behind its
 * gates: the approval after the batch before, and bakeBetweenBatches), and devices of opened
 * batches still to do (deferred ones that returned, or offline ones a `wait` batch went on
 * without). In plan order each one must then be inside its window, online (else held, skipped
 * or deferred, by offlineDevices), fit its group's disruption budget and the rate. Pure and
 * level-triggered: the same stored state and observations give the same answer.
 */
export function admit(input: AdmissionInput): Admission {
  const { now, currentBatch } = input;
  const admission: Admission = { start: [], skip: [], defer: [], held: new Map() };
  const gate = batchGate(input);
  const standings = input.budget ? groupStandings(input.devices, input.budget) : undefined;
  const starts: number[] = [];
  for (const device of input.devices)
    if (device.switchedAt !== undefined) starts.push(device.switchedAt);
  const rate = rateRoom(input.rate, starts, now);
  let rateLeft = rate.room;
  const openings: WindowOpenings = new Map();

  for (const device of input.devices) {
    const carried =
      device.state === 'deferred' || (device.state === 'pending' && device.batch < currentBatch);
    if (device.batch > currentBatch) continue;
    if (!carried && device.state !== 'pending') continue;
    const hold = (why: Hold) => admission.held.set(device.id, why);
    if (!carried && gate) {
      hold(gate);
      continue;
    }
    const window = deviceWindow(input.windows, device.labels, now, openings);
    if (!window.open) {
      const { label, timeZone } = window.window;
      hold({ kind: 'window', window: label, timeZone, until: window.opensAt });
      continue;
    }
    if (!device.online) {
      if (device.state === 'deferred') hold({ kind: 'offline-deferred' });
      else if (input.offlineDevices === 'skip') admission.skip.push(device.id);
      else if (input.offlineDevices === 'defer') admission.defer.push(device.id);
      else hold({ kind: 'offline' });
      continue;
    }
    const standing = standings?.get(groupOf(device.labels, input.budget!.groupBy));
    if (standing && standing.room <= 0) {
      hold({ kind: 'budget', group: standing.group, standing });
      continue;
    }
    if (rateLeft <= 0) {
      hold({ kind: 'rate', until: rate.nextAt!, perMinute: rate.perMinute! });
      continue;
    }
    admission.start.push(device.id);
    rateLeft--;
    if (standing) {
      // The standing is shared by the group's devices: what this start uses, the next one lacks.
      standing.room--;
      standing.disrupted++;
      standing.available--;
    }
  }
  return admission;
}

function batchGate(input: AdmissionInput): Hold | undefined {
  const waitingFor = missingApproval(input.approvalPoints, input.approved, input.currentBatch);
  if (waitingFor !== undefined) return { kind: 'approval', afterBatch: waitingFor };
  if (input.previousBatchDoneAt !== undefined && input.bakeBetweenBatches > 0) {
    const until = input.previousBatchDoneAt + input.bakeBetweenBatches * 1000;
    if (input.now < until) return { kind: 'bake', until };
  }
  return undefined;
}

/**
 * A hold as one line, e.g. `window Mon-Fri 01:00-05:00 Europe/Berlin closed until
 * 2026-12-01T01:00+01:00` or `budget of group site=berlin full: 2 of 4 updating or failed, …`.
 */
export function describeHold(hold: Hold): string {
  switch (hold.kind) {
    case 'approval':
      return `waiting for approval after batch ${hold.afterBatch}`;
    case 'bake':
      return `baking the previous batch until ${new Date(hold.until).toISOString()}`;
    case 'window':
      return hold.until === undefined
        ? `window ${hold.window} never opens`
        : `window ${hold.window} closed until ${formatInZone(hold.until, hold.timeZone)}`;
    case 'offline':
      return 'offline: waiting for it to return';
    case 'offline-deferred':
      return 'offline: deferred, updated when it returns';
    case 'budget':
      return `budget of group ${hold.group} full: ${describeGroup(hold.standing)}`;
    case 'rate':
      return `rate limit ${hold.perMinute}/min until ${new Date(hold.until).toISOString()}`;
  }
}

/**
 * Why the rollout is waiting, one line per distinct reason with how many devices it holds, most
 * first: `3 devices: budget of group site=berlin: … is full`.
 */
export function summarizeHolds(held: ReadonlyMap<string, Hold>): string[] {
  const counts = new Map<string, number>();
  for (const hold of held.values()) {
    const line = describeHold(hold);
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  return [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([line, n]) => `${n} device${n === 1 ? '' : 's'}: ${line}`);
}
