import { parseWindowSchedule, type MaintenanceWindow, type WindowSchedule } from '@podfleet/shared';
import { matchesSelector, parseSelector } from '../../desired/selector.js';

/** A maintenance window ready to ask: its parsed schedule and which devices it applies to. */
export interface CompiledWindow {
  /** Its position in `policy.windows`, for messages. */
  index: number;
  schedule: WindowSchedule;
  timeZone: string;
  /** `Mon-Fri 01:00-05:00 Europe/Berlin`. */
  label: string;
  appliesTo(labels: Readonly<Record<string, string>>): boolean;
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/**
 * Compiles `policy.windows`; a selector that does not parse is a problem naming its field (the
 * shared schema cannot parse selectors: the grammar lives with desired state). A window with
 * neither selector nor match applies to every device.
 */
export function compileWindows(windows: readonly MaintenanceWindow[]): {
  windows: CompiledWindow[];
  problems: string[];
} {
  const compiled: CompiledWindow[] = [];
  const problems: string[] = [];
  windows.forEach((window, index) => {
    const schedule = parseWindowSchedule(window.schedule);
    if (!schedule.ok) {
      problems.push(`strategy.policy.windows[${index}].schedule: ${schedule.message}`);
      return;
    }
    let appliesTo: CompiledWindow['appliesTo'] = () => true;
    if (window.selector !== undefined) {
      const parsed = parseSelector(window.selector);
      if (!parsed.ok) {
        problems.push(`strategy.policy.windows[${index}].selector: ${parsed.message}`);
        return;
      }
      appliesTo = (labels) => matchesSelector(parsed.selector, labels);
    } else if (window.match !== undefined) {
      const match = Object.entries(window.match);
      appliesTo = (labels) => match.every(([key, value]) => labels[key] === value);
    }
    const label = `${window.schedule} ${window.timeZone}`;
    compiled.push({
      index,
      schedule: schedule.schedule,
      timeZone: window.timeZone,
      label,
      appliesTo,
    });
  });
  return { windows: compiled, problems };
}

interface LocalTime {
  year: number;
  month: number;
  day: number;
  /** 0 = Sunday, as WindowSchedule.days. */
  weekday: number;
  /** Minute of the local day. */
  minute: number;
  /** The local wall clock read as if it were UTC (epoch ms, whole seconds). */
  wall: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAY_INDEX: Record<string, number> = {
  Sun: 0,
  Mon: 1,
  Tue: 2,
  Wed: 3,
  Thu: 4,
  Fri: 5,
  Sat: 6,
};

/** The wall clock in a time zone at an instant, from Intl (which knows the zone's DST rules). */
export function localTime(instant: number, timeZone: string): LocalTime {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, format);
  }
  const parts: Record<string, string> = {};
  for (const part of format.formatToParts(instant)) parts[part.type] = part.value;
  const [year, month, day] = [Number(parts.year), Number(parts.month), Number(parts.day)];
  const [hour, minute, second] = [Number(parts.hour), Number(parts.minute), Number(parts.second)];
  return {
    year,
    month,
    day,
    weekday: WEEKDAY_INDEX[parts.weekday!]!,
    minute: hour * 60 + minute,
    wall: Date.UTC(year, month - 1, day, hour, minute, second),
  };
}

/** The zone's offset from UTC at an instant, in ms (Berlin in winter: +3,600,000). */
function offsetAt(instant: number, timeZone: string): number {
  return localTime(instant, timeZone).wall - Math.floor(instant / 1000) * 1000;
}

/** Whether the window is open at an instant: judged on the local wall clock, so DST just works. */
export function isWindowOpen(window: CompiledWindow, instant: number): boolean {
  const { weekday, minute } = localTime(instant, window.timeZone);
  const { days, start, end } = window.schedule;
  if (start < end) return days[weekday]! && minute >= start && minute < end;
  // Crosses midnight: the evening part of a listed day, or the morning after one.
  return (days[weekday]! && minute >= start) || (days[(weekday + 6) % 7]! && minute < end);
}

/**
 * The first instant at or after `from` at which the window is open (`from` itself when open).
 * A local start time that DST skips (02:30 on the last Sunday of March in Berlin) opens the window
 * when the clock jumps, if it is still open then; one that DST repeats opens it the first time.
 */
export function nextWindowOpening(window: CompiledWindow, from: number): number | undefined {
  if (isWindowOpen(window, from)) return from;
  const today = localTime(from, window.timeZone);
  for (let offset = 0; offset <= 8; offset++) {
    const date = Date.UTC(today.year, today.month - 1, today.day + offset);
    if (!window.schedule.days[new Date(date).getUTCDay()]) continue;
    const opening = instantOfWall(window, date + window.schedule.start * MINUTE, from);
    if (opening !== undefined) return opening;
  }
  return undefined;
}

/**
 * The first instant from `from` on whose local wall clock reads `wall`; when DST skips that time,
 * the jump, if the window is open then.
 */
function instantOfWall(window: CompiledWindow, wall: number, from: number): number | undefined {
  const zone = window.timeZone;
  const early = wall - offsetAt(wall + DAY, zone); // with the offset after a change that day
  const late = wall - offsetAt(wall - DAY, zone); // with the offset before it
  const exact = [Math.min(early, late), Math.max(early, late)].filter(
    (instant) => localTime(instant, zone).wall === wall,
  );
  if (exact.length > 0) return exact.find((instant) => instant >= from);
  // The wall time does not exist (the clock jumps over it): the window opens with the jump.
  for (let instant = Math.min(early, late); instant <= Math.max(early, late); instant += MINUTE) {
    if (instant >= from && isWindowOpen(window, instant)) return instant;
  }
  return undefined;
}

export type WindowState =
  { open: true } | { open: false; window: CompiledWindow; opensAt: number | undefined };

/** Openings already worked out for one `now`, shared by the devices of one pass. */
export type WindowOpenings = Map<CompiledWindow, number | undefined>;

/**
 * Whether a device may be updated now as far as windows go: yes when no window applies to it or
 * one that applies is open; else when the first one that applies opens. Pass one `openings` map
 * for all devices of a pass at the same `now`: each window is then worked out once.
 */
export function deviceWindow(
  windows: readonly CompiledWindow[],
  labels: Readonly<Record<string, string>>,
  now: number,
  openings: WindowOpenings = new Map(),
): WindowState {
  let closed: { window: CompiledWindow; opensAt: number | undefined } | undefined;
  for (const window of windows) {
    if (!window.appliesTo(labels)) continue;
    let opensAt = openings.get(window);
    if (!openings.has(window)) openings.set(window, (opensAt = nextWindowOpening(window, now)));
    if (opensAt === now) return { open: true };
    const sooner =
      opensAt !== undefined && (closed?.opensAt === undefined || opensAt < closed.opensAt);
    if (!closed || sooner) closed = { window, opensAt };
  }
  return closed ? { open: false, ...closed } : { open: true };
}

/**
 * For `rollout plan`: from `from` on, when the first of these devices may be updated and when the
 * last of them first may (a batch spanning sites runs as their windows open).
 */
export function windowForecast(
  windows: readonly CompiledWindow[],
  devices: readonly Readonly<Record<string, string>>[],
  from: number,
): { first: number | undefined; last: number | undefined } {
  let first: number | undefined;
  let last: number | undefined;
  const openings: WindowOpenings = new Map();
  for (const labels of devices) {
    const state = deviceWindow(windows, labels, from, openings);
    const at = state.open ? from : state.opensAt;
    if (at === undefined) continue;
    first = first === undefined ? at : Math.min(first, at);
    last = last === undefined ? at : Math.max(last, at);
  }
  return { first, last };
}

/** An instant as the zone's wall clock with its offset: `2026-12-01T01:00+01:00`. */
export function formatInZone(instant: number, timeZone: string): string {
  const local = localTime(instant, timeZone);
  const offset = Math.round((local.wall - Math.floor(instant / 1000) * 1000) / MINUTE);
  const sign = offset < 0 ? '-' : '+';
  const pad = (n: number) => String(n).padStart(2, '0');
  const abs = Math.abs(offset);
  const date = `${local.year}-${pad(local.month)}-${pad(local.day)}`;
  const time = `${pad(Math.floor(local.minute / 60))}:${pad(local.minute % 60)}`;
  return `${date}T${time}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}
