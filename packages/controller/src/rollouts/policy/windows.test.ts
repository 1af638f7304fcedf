import { RolloutPolicy } from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import {
  compileWindows,
  deviceWindow,
  formatInZone,
  isWindowOpen,
  nextWindowOpening,
  windowForecast,
  type CompiledWindow,
} from './windows.js';

const at = (iso: string) => Date.parse(iso);

function windowOf(schedule: string, timeZone: string, extra: object = {}): CompiledWindow {
  const policy = RolloutPolicy.parse({ windows: [{ schedule, timeZone, ...extra }] });
  const { windows, problems } = compileWindows(policy.windows);
  expect(problems).toEqual([]);
  return windows[0]!;
}

/** The open stretches of a window between two instants, minute by minute, as ISO pairs. */
function openStretches(window: CompiledWindow, from: string, to: string): string[][] {
  const stretches: string[][] = [];
  let openedAt: number | undefined;
  for (let t = at(from); t <= at(to); t += 60_000) {
    const open = isWindowOpen(window, t);
    if (open && openedAt === undefined) openedAt = t;
    if (!open && openedAt !== undefined) {
      stretches.push([new Date(openedAt).toISOString(), new Date(t).toISOString()]);
      openedAt = undefined;
    }
  }
  return stretches;
}

describe('a weekday window in Europe/Berlin', () => {
  const window = windowOf('Mon-Fri 01:00-05:00', 'Europe/Berlin');

  it('is closed before 01:00 local and says when it opens, in local time', () => {
    const now = at('2026-11-30T23:30:00Z'); // Tuesday 00:30 CET
    expect(isWindowOpen(window, now)).toBe(false);
    const opens = nextWindowOpening(window, now)!;
    expect(new Date(opens).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(formatInZone(opens, 'Europe/Berlin')).toBe('2026-12-01T01:00+01:00');
  });

  it('is open from 01:00 to 05:00 local, end excluded', () => {
    expect(isWindowOpen(window, at('2026-12-01T00:00:00Z'))).toBe(true);
    expect(isWindowOpen(window, at('2026-12-01T03:59:59Z'))).toBe(true);
    expect(isWindowOpen(window, at('2026-12-01T04:00:00Z'))).toBe(false);
    expect(nextWindowOpening(window, at('2026-12-01T02:00:00Z'))).toBe(at('2026-12-01T02:00:00Z'));
  });

  it('skips the weekend', () => {
    const fridayMorning = at('2026-12-04T05:00:00Z'); // Friday 06:00 CET
    expect(nextWindowOpening(window, fridayMorning)).toBe(at('2026-12-07T00:00:00Z'));
    expect(isWindowOpen(window, at('2026-12-05T01:00:00Z'))).toBe(false); // Saturday 02:00
  });
});

describe('a window across midnight', () => {
  const window = windowOf('Fri 22:00-02:00', 'America/New_York');

  it('opens on the listed day and closes the morning after', () => {
    expect(isWindowOpen(window, at('2026-12-05T02:59:00Z'))).toBe(false); // Fri 21:59 EST
    expect(isWindowOpen(window, at('2026-12-05T03:00:00Z'))).toBe(true); // Fri 22:00
    expect(isWindowOpen(window, at('2026-12-05T06:30:00Z'))).toBe(true); // Sat 01:30
    expect(isWindowOpen(window, at('2026-12-05T07:00:00Z'))).toBe(false); // Sat 02:00
    expect(isWindowOpen(window, at('2026-12-06T04:00:00Z'))).toBe(false); // Sat 23:00
    expect(isWindowOpen(window, at('2026-12-06T06:00:00Z'))).toBe(false); // Sun 01:00
  });

  it('from a Thursday night, opens Friday 22:00 local', () => {
    const opens = nextWindowOpening(window, at('2026-12-04T04:00:00Z'))!; // Thu 23:00 EST
    expect(formatInZone(opens, 'America/New_York')).toBe('2026-12-04T22:00-05:00');
  });

  it('keeps its local hours over the spring change in Berlin', () => {
    const nightly = windowOf('23:00-01:00', 'Europe/Berlin');
    expect(openStretches(nightly, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z')).toEqual([
      ['2026-03-28T22:00:00.000Z', '2026-03-29T00:00:00.000Z'], // 23:00-01:00 CET
      ['2026-03-29T21:00:00.000Z', '2026-03-29T23:00:00.000Z'], // 23:00-01:00 CEST
    ]);
  });
});

describe('DST in Europe/Berlin (last Sunday of March and of October)', () => {
  it('a nightly window is 3 real hours on the spring day and 5 on the autumn one', () => {
    const nightly = windowOf('01:00-05:00', 'Europe/Berlin');
    expect(openStretches(nightly, '2026-03-28T12:00:00Z', '2026-03-29T12:00:00Z')).toEqual([
      ['2026-03-29T00:00:00.000Z', '2026-03-29T03:00:00.000Z'],
    ]);
    expect(openStretches(nightly, '2026-10-24T12:00:00Z', '2026-10-25T12:00:00Z')).toEqual([
      ['2026-10-24T23:00:00.000Z', '2026-10-25T04:00:00.000Z'],
    ]);
    expect(nextWindowOpening(nightly, at('2026-03-29T03:00:00Z'))).toBe(
      at('2026-03-29T23:00:00Z'), // 01:00 CEST the next night
    );
  });

  it('a window that starts inside the skipped hour opens when the clock jumps', () => {
    const window = windowOf('Sun 02:30-04:00', 'Europe/Berlin');
    const opens = nextWindowOpening(window, at('2026-03-28T12:00:00Z'))!;
    expect(new Date(opens).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(formatInZone(opens, 'Europe/Berlin')).toBe('2026-03-29T03:00+02:00');
    expect(isWindowOpen(window, at('2026-03-29T00:59:00Z'))).toBe(false); // 01:59 CET
    expect(isWindowOpen(window, at('2026-03-29T02:00:00Z'))).toBe(false); // 04:00 CEST
  });

  it('a window wholly inside the skipped hour waits a week', () => {
    const window = windowOf('Sun 02:00-02:45', 'Europe/Berlin');
    const opens = nextWindowOpening(window, at('2026-03-28T12:00:00Z'))!;
    expect(formatInZone(opens, 'Europe/Berlin')).toBe('2026-04-05T02:00+02:00');
  });

  it('a window inside the repeated hour opens twice, the first time first', () => {
    const window = windowOf('Sun 02:30-02:45', 'Europe/Berlin');
    const opens = nextWindowOpening(window, at('2026-10-24T12:00:00Z'))!;
    expect(formatInZone(opens, 'Europe/Berlin')).toBe('2026-10-25T02:30+02:00');
    expect(openStretches(window, '2026-10-24T12:00:00Z', '2026-10-25T12:00:00Z')).toEqual([
      ['2026-10-25T00:30:00.000Z', '2026-10-25T00:45:00.000Z'], // 02:30-02:45 CEST
      ['2026-10-25T01:30:00.000Z', '2026-10-25T01:45:00.000Z'], // 02:30-02:45 CET
    ]);
    const second = nextWindowOpening(window, at('2026-10-25T00:50:00Z'))!;
    expect(formatInZone(second, 'Europe/Berlin')).toBe('2026-10-25T02:30+01:00');
  });
});

describe('time zones', () => {
  it('one schedule is open in Tokyo and closed in Los Angeles at the same instant', () => {
    const tokyo = windowOf('Mon-Fri 01:00-05:00', 'Asia/Tokyo');
    const la = windowOf('Mon-Fri 01:00-05:00', 'America/Los_Angeles');
    const now = at('2026-12-01T17:00:00Z'); // Wed 02:00 JST, Tue 09:00 PST
    expect(isWindowOpen(tokyo, now)).toBe(true);
    expect(isWindowOpen(la, now)).toBe(false);
    expect(formatInZone(nextWindowOpening(la, now)!, 'America/Los_Angeles')).toBe(
      '2026-12-02T01:00-08:00',
    );
  });

  it('formats half-hour offsets and UTC', () => {
    expect(formatInZone(at('2026-12-01T00:00:00Z'), 'Asia/Kolkata')).toBe('2026-12-01T05:30+05:30');
    expect(formatInZone(at('2026-12-01T00:00:00Z'), 'UTC')).toBe('2026-12-01T00:00+00:00');
  });
});

describe('windows per device', () => {
  const policy = RolloutPolicy.parse({
    windows: [
      { match: { site: 'berlin' }, schedule: 'Mon-Fri 01:00-05:00', timeZone: 'Europe/Berlin' },
      { selector: 'site in (nyc)', schedule: '02:00-04:00', timeZone: 'America/New_York' },
      { selector: 'site in (nyc)', schedule: '12:00-13:00', timeZone: 'America/New_York' },
    ],
  });
  const { windows } = compileWindows(policy.windows);
  const tuesdayNoonUtc = at('2026-12-01T12:00:00Z'); // Berlin 13:00, New York 07:00

  it('leaves a device no window applies to free', () => {
    expect(deviceWindow(windows, { site: 'paris' }, tuesdayNoonUtc)).toEqual({ open: true });
  });

  it('a device under several windows waits for the first to open', () => {
    const state = deviceWindow(windows, { site: 'nyc' }, tuesdayNoonUtc);
    expect(state.open).toBe(false);
    if (state.open) return;
    expect(state.window.index).toBe(2);
    expect(formatInZone(state.opensAt!, 'America/New_York')).toBe('2026-12-01T12:00-05:00');
    expect(deviceWindow(windows, { site: 'nyc' }, at('2026-12-01T17:30:00Z'))).toEqual({
      open: true,
    });
  });

  it('forecasts when a batch spanning sites can first and fully run', () => {
    const forecast = windowForecast(
      windows,
      [{ site: 'berlin' }, { site: 'nyc' }, { site: 'paris' }],
      tuesdayNoonUtc,
    );
    expect(forecast).toEqual({ first: tuesdayNoonUtc, last: at('2026-12-02T00:00:00Z') });
  });

  it('names the field of a selector that does not parse', () => {
    const bad = RolloutPolicy.parse({
      windows: [{ selector: 'site in (', schedule: '01:00-02:00', timeZone: 'UTC' }],
    });
    const { windows: compiled, problems } = compileWindows(bad.windows);
    expect(compiled).toEqual([]);
    expect(problems[0]).toMatch(/^strategy\.policy\.windows\[0\]\.selector: /);
  });
});
