import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.js';

describe('RateLimiter', () => {
  it('allows a burst of limit, then one more per limit/window', () => {
    let now = 0;
    const limiter = new RateLimiter({ limit: 10, windowMs: 60_000 }, () => now);
    for (let i = 0; i < 10; i++) expect(limiter.take('a')).toEqual({ allowed: true });
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 6 });
    now += 3_000;
    expect(limiter.take('a')).toEqual({ allowed: false, retryAfterSeconds: 3 });
    now += 3_000;
    expect(limiter.take('a')).toEqual({ allowed: true });
    expect(limiter.take('a').allowed).toBe(false);
    // A minute of quiet refills the bucket, and no more than full.
    now += 120_000;
    for (let i = 0; i < 10; i++) expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
  });

  it('keeps a budget per key', () => {
    const limiter = new RateLimiter({ limit: 1, windowMs: 1_000 }, () => 0);
    expect(limiter.take('a').allowed).toBe(true);
    expect(limiter.take('a').allowed).toBe(false);
    expect(limiter.take('b').allowed).toBe(true);
  });

  it('forgets quiet keys first, then the least recently seen, within maxKeys', () => {
    let now = 0;
    const limiter = new RateLimiter({ limit: 2, windowMs: 1_000 }, () => now, 3);
    limiter.take('quiet-1');
    limiter.take('quiet-2');
    now += 5_000;
    limiter.take('busy');
    limiter.take('busy');
    limiter.take('new-1');
    limiter.take('new-2');
    expect(limiter.size).toBe(3);
    // The quiet keys were full again and went first; 'busy' is remembered and still limited.
    expect(limiter.take('busy').allowed).toBe(false);
    for (const key of ['a', 'b', 'c', 'd']) limiter.take(key);
    expect(limiter.size).toBe(3);
  });
});
