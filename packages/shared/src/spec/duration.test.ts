import { describe, expect, it } from 'vitest';
import {
  MAX_SPEC_DURATION,
  duration,
  formatDuration,
  parseDuration,
  specDuration,
} from './duration.js';
import { formatIssues } from './text.js';

describe('durations', () => {
  it.each([
    ['10s', 10],
    ['1m30s', 90],
    ['500ms', 0.5],
    ['1h', 3600],
    ['90', 90],
    [15, 15],
  ])('parses %j as %d seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it.each(['', 'soon', '10 s', '-5s', '1d', 'ms'])('rejects %j', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });

  it.each([
    [0, '0s'],
    [10, '10s'],
    [90, '1m30s'],
    [0.5, '500ms'],
    [3600, '1h'],
    [3661.5, '1h1m1.5s'],
  ])('formats %d seconds as the Go duration %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
    expect(parseDuration(text)).toBe(seconds);
  });
});

describe('duration fields', () => {
  it('refuses a duration too large to be a number rather than reading it as Infinity', () => {
    expect(parseDuration(`1${'0'.repeat(400)}`)).toBeUndefined();
    expect(parseDuration(`1${'0'.repeat(400)}h`)).toBeUndefined();
    expect(parseDuration(Number.POSITIVE_INFINITY)).toBeUndefined();
  });

  it('bounds a spec duration at 7 days, both sides', () => {
    expect(specDuration.parse(MAX_SPEC_DURATION)).toBe(604_800);
    expect(specDuration.parse('168h')).toBe(604_800);
    expect(specDuration.safeParse('168h0.001s').success).toBe(false);
    expect(specDuration.safeParse(1e12).success).toBe(false);
  });

  it('echoes a bad duration short and with control characters escaped', () => {
    const parsed = duration.safeParse(`\u001b[2J${'9'.repeat(100_000)}x`);
    const [line] = formatIssues(parsed.error!);
    expect(line).toMatch(/^\(root\): not a duration: "\\u001b\[2J9+…\(\d+ more characters\)/);
    expect(line!.length).toBeLessThan(200);
  });
});
