import { describe, expect, it } from 'vitest';
import { ReconnectBackoff } from './backoff.js';

describe('ReconnectBackoff', () => {
  it('doubles up to the cap, drawing each delay from the upper half of its range', () => {
    const low = new ReconnectBackoff({ baseMs: 1000, capMs: 8000, random: () => 0 });
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([
      500, 1000, 2000, 4000, 4000, 4000,
    ]);
    const high = new ReconnectBackoff({ baseMs: 1000, capMs: 8000, random: () => 0.999999 });
    expect(Array.from({ length: 6 }, () => high.next())).toEqual([
      1000, 2000, 4000, 8000, 8000, 8000,
    ]);
  });

  it('spreads a fleet that lost the broker at the same moment', () => {
    const delays = Array.from({ length: 200 }, () =>
      new ReconnectBackoff({ baseMs: 1000, capMs: 60_000 }).next(),
    );
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
    expect(new Set(delays).size).toBeGreaterThan(100);
  });

  it('starts from the base again after a successful connection', () => {
    const backoff = new ReconnectBackoff({ baseMs: 1000, capMs: 60_000, random: () => 0 });
    for (let i = 0; i < 10; i++) backoff.next();
    expect(backoff.next()).toBe(30_000);
    backoff.reset();
    expect(backoff.next()).toBe(500);
  });
});
