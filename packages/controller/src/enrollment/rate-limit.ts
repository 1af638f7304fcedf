/** At most `limit` attempts per `windowMs` for each key, in bursts of up to `limit`. */
export interface RateRule {
  limit: number;
  windowMs: number;
}

export type Admission = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per key (a client address): full at `limit`, refilled at limit per window, one
 * token per attempt. Memory stays bounded: past `maxKeys` keys, full buckets (clients that have
 * been quiet for a window) are forgotten first, then the least recently seen.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly rule: RateRule,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {
    this.perMs = rule.limit / rule.windowMs;
  }

  /** How many keys are remembered. */
  get size(): number {
    return this.buckets.size;
  }

  take(key: string): Admission {
    const now = this.now();
    const tokens = this.tokensOf(key, now);
    // Re-inserted on every attempt, so the Map's order is least recently seen first.
    this.buckets.delete(key);
    if (tokens < 1) {
      this.buckets.set(key, { tokens, at: now });
      return { allowed: false, retryAfterSeconds: Math.ceil((1 - tokens) / this.perMs / 1000) };
    }
    this.buckets.set(key, { tokens: tokens - 1, at: now });
    if (this.buckets.size > this.maxKeys) this.prune(now);
    return { allowed: true };
  }

  private tokensOf(key: string, now: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.rule.limit;
    return Math.min(this.rule.limit, bucket.tokens + (now - bucket.at) * this.perMs);
  }

  private prune(now: number): void {
    for (const key of this.buckets.keys()) {
      if (this.tokensOf(key, now) >= this.rule.limit) this.buckets.delete(key);
    }
    for (const key of this.buckets.keys()) {
      if (this.buckets.size <= this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}
