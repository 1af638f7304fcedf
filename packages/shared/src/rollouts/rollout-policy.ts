import { z } from 'zod';
import { specDuration } from '../spec/duration.js';
import { CountOrPercent, Percent, PositiveCountOrPercent } from './count-or-percent.js';

// Agents report failures in their events (reports/device-event.ts); the policy judges by them.
export { FAILURE_REASONS, FailureReason, DeviceFailure } from '../reports/device-failure.js';

export const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;

/** A parsed window schedule: local days it opens on (index 0 = Sunday) and minutes of the day. */
export interface WindowSchedule {
  days: readonly boolean[];
  /** Opens at this minute of a listed day, local time. */
  start: number;
  /** Closes at this minute; not after `start`: the window crosses midnight into the next day. */
  end: number;
}

export type ScheduleParse = { ok: true; schedule: WindowSchedule } | { ok: false; message: string };

const SCHEDULE = /^(?:(\S+)\s+)?(\d{2}):(\d{2})-(\d{2}):(\d{2})$/;

/**
 * `Mon-Fri 01:00-05:00`, `Sat,Sun 00:00-24:00`, `Fri 22:00-02:00` (crosses midnight: opens Friday
 * 22:00, closes Saturday 02:00), `* 03:00-04:00` or just `03:00-04:00` (every day). Days name the
 * day the window opens; ranges may wrap (`Fri-Mon`).
 */
export function parseWindowSchedule(text: string): ScheduleParse {
  const match = SCHEDULE.exec(text.trim());
  if (!match)
    return { ok: false, message: 'expected "[DAYS] HH:MM-HH:MM", e.g. "Mon-Fri 01:00-05:00"' };
  const [, dayText, sh, sm, eh, em] = match;
  const days = dayText === undefined || dayText === '*' ? Array(7).fill(true) : parseDays(dayText);
  if (typeof days === 'string') return { ok: false, message: days };
  const start = Number(sh) * 60 + Number(sm);
  const end = Number(eh) * 60 + Number(em);
  if (Number(sh) > 23 || Number(sm) > 59) return { ok: false, message: `no such time ${sh}:${sm}` };
  if (Number(em) > 59 || end > 24 * 60) return { ok: false, message: `no such time ${eh}:${em}` };
  if (start === end)
    return { ok: false, message: 'window opens and closes at once (all day is 00:00-24:00)' };
  return { ok: true, schedule: { days, start, end } };
}

function parseDays(text: string): boolean[] | string {
  const days: boolean[] = Array(7).fill(false);
  for (const part of text.split(',')) {
    const [from, to, extra] = part
      .split('-')
      .map((name) => WEEKDAYS.indexOf(name.toLowerCase() as 'sun'));
    if (from === undefined || from < 0 || extra !== undefined || (to !== undefined && to < 0))
      return `not a day or day range: ${JSON.stringify(part)} (use Mon, Tue, … Sun)`;
    for (let day = from; ; day = (day + 1) % 7) {
      days[day] = true;
      if (day === (to ?? from)) break;
    }
  }
  return days;
}

/** True when Intl knows the IANA time zone (`Europe/Berlin`, `UTC`). */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

// Label keys are checked fully where labels live (controller); here only what a key can't hold.
const labelKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,252}$/, { message: 'not a label key' });

const DisruptionBudget = z
  .strictObject({
    /** Label keys whose values form a group: `[site]` makes one group per site. */
    groupBy: z.array(labelKey).min(1, { message: 'name at least one label key' }),
    /** At most this many devices of a group updating or failed at once. */
    maxUnavailable: CountOrPercent.optional(),
    /** At least this many devices of a group online and not disrupted. */
    minAvailable: CountOrPercent.optional(),
  })
  .superRefine((budget, ctx) => {
    if (budget.maxUnavailable === undefined && budget.minAvailable === undefined)
      ctx.addIssue({ code: 'custom', message: 'give maxUnavailable, minAvailable or both' });
    const max = budget.maxUnavailable;
    if (max === 0 || (typeof max === 'string' && Number.parseFloat(max) === 0))
      ctx.addIssue({
        code: 'custom',
        path: ['maxUnavailable'],
        message: 'must let at least one device update',
      });
  });

const Rate = z.discriminatedUnion('kind', [
  /** Each batch starts all at once (within the budget and windows). */
  z.strictObject({ kind: z.literal('fixed') }),
  /** `start` devices in the first minute, times `factor` each minute after, up to maxPerMinute. */
  z
    .strictObject({
      kind: z.literal('exponential'),
      start: z.number().int().min(1),
      factor: z.number().min(1).max(100),
      maxPerMinute: z.number().int().min(1),
    })
    .refine((rate) => rate.maxPerMinute >= rate.start, {
      message: 'must be at least start',
      path: ['maxPerMinute'],
    }),
]);

const Window = z
  .strictObject({
    /** The devices it applies to, as a label selector (`site=berlin,tier in (edge)`). */
    selector: z.string().min(1).optional(),
    /** Or as labels that must all equal these values. */
    match: z.record(labelKey, z.string()).optional(),
    schedule: z.string().superRefine((text, ctx) => {
      const parsed = parseWindowSchedule(text);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.message });
    }),
    timeZone: z
      .string()
      .refine(isTimeZone, { message: 'not an IANA time zone (e.g. Europe/Berlin)' }),
  })
  .refine((window) => window.selector === undefined || window.match === undefined, {
    message: 'give selector or match, not both',
    path: ['match'],
  });

const Approval = z.strictObject({
  /** Batches after which an operator approves: `canary`, or an index as `rollout plan` shows. */
  after: z.array(z.union([z.literal('canary'), z.number().int().min(0)])).min(1),
});

const Abort = z
  .strictObject({
    failures: z.number().int().min(1).optional(),
    failureRate: Percent.optional(),
    /** Criteria apply once this many devices finished (succeeded or failed). */
    minDevices: z.number().int().min(1).default(1),
    /** `revert`: re-pin every updated device to its previous digest; `halt`: leave them. */
    onAbort: z.enum(['revert', 'halt']).default('revert'),
  })
  .refine((abort) => abort.failures !== undefined || abort.failureRate !== undefined, {
    message: 'give failures, failureRate or both',
  });

/**
 * How a rollout admits devices beyond its batches: success and bake, disruption budgets, rate,
 * maintenance windows, approvals, abort criteria and offline devices. Every part is optional; an
 * absent part leaves the strategy's own field (maxFailures, pauseBetweenBatches, …) in charge.
 */
export const RolloutPolicy = z.strictObject({
  /**
   * Devices of a batch that must succeed (all of a smaller batch); absent: all but the strategy's
   * maxFailures. Never 0: a batch that passes whatever fails is maxFailures "100%".
   */
  successThreshold: PositiveCountOrPercent.optional(),
  /** A device succeeds once ready and still active, without a restart, this long (seconds). */
  bake: specDuration.default(60),
  /** Wait after a batch succeeded, watching it, before the next; absent: pauseBetweenBatches. */
  bakeBetweenBatches: specDuration.optional(),
  disruptionBudget: DisruptionBudget.optional(),
  rate: Rate.default({ kind: 'fixed' }),
  windows: z.array(Window).default([]),
  approval: Approval.optional(),
  abort: Abort.optional(),
  /** `defer`: offline devices leave the batch count and update when they return. */
  offlineDevices: z.enum(['wait', 'skip', 'defer']).optional(),
});
export type RolloutPolicy = z.output<typeof RolloutPolicy>;
export type RolloutPolicyInput = z.input<typeof RolloutPolicy>;
export type DisruptionBudget = z.output<typeof DisruptionBudget>;
export type RolloutRate = z.output<typeof Rate>;
export type MaintenanceWindow = z.output<typeof Window>;
export type AbortCriteria = z.output<typeof Abort>;
export type OfflinePolicy = 'wait' | 'skip' | 'defer';
