import { describe, expect, it } from 'vitest';
import { exponentialLimit, rateRoom } from './rate.js';

const MINUTE = 60_000;
const exponential = { kind: 'exponential', start: 2, factor: 2, maxPerMinute: 10 } as const;

describe('rateRoom', () => {
  it('puts no limit on fixed batches', () => {
    expect(rateRoom({ kind: 'fixed' }, [0, 0, 0], 0).room).toBe(Number.POSITIVE_INFINITY);
  });

  it('allows `start` before anything started', () => {
    expect(rateRoom(exponential, [], 5_000)).toEqual({ room: 2, perMinute: 2, nextAt: 65_000 });
  });

  it('grows by factor per minute with starts, up to maxPerMinute', () => {
    // Start as many as allowed, one pass per 10 s, and record the starts per minute.
    const starts: number[] = [];
    const perMinute: number[] = [];
    for (let now = 0; now < 6 * MINUTE; now += 10_000) {
      const { room } = rateRoom(exponential, starts, now);
      for (let i = 0; i < room; i++) starts.push(now);
    }
    for (let minute = 0; minute < 6; minute++)
      perMinute.push(starts.filter((t) => Math.floor(t / MINUTE) === minute).length);
    expect(perMinute).toEqual([2, 4, 8, 10, 10, 10]);
  });

  it('says when the next minute begins', () => {
    const starts = [1_000, 1_000];
    expect(rateRoom(exponential, starts, 30_000)).toEqual({
      room: 0,
      perMinute: 2,
      nextAt: 61_000,
    });
    expect(rateRoom(exponential, starts, 61_000)).toEqual({
      room: 4,
      perMinute: 4,
      nextAt: 121_000,
    });
  });

  it('does not grow through minutes without starts (a long wait resumes slowly)', () => {
    const starts = [0, 0, MINUTE, MINUTE, MINUTE, MINUTE];
    // Two busy minutes, then a three-hour wait for a window: the rate is 2 × 2² = 8, not 10.
    expect(rateRoom(exponential, starts, 3 * 60 * MINUTE)).toMatchObject({ room: 8, perMinute: 8 });
  });

  it('ignores starts in the future (a clock that moved back)', () => {
    expect(rateRoom(exponential, [10 * MINUTE], 0)).toMatchObject({ room: 2, perMinute: 2 });
  });
});

describe('exponentialLimit', () => {
  it('rounds down, never below start, and caps even huge exponents', () => {
    const slow = { kind: 'exponential', start: 1, factor: 1.5, maxPerMinute: 100 } as const;
    expect([0, 1, 2, 3, 4].map((k) => exponentialLimit(slow, k))).toEqual([1, 1, 2, 3, 5]);
    expect(exponentialLimit(slow, 10_000)).toBe(100);
  });
});
