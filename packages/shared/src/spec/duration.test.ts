import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.js';

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
