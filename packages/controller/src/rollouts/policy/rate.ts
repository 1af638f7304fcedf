import type { RolloutRate } from '@podfleet/shared';

const MINUTE = 60_000;

/** How many more devices may start now under the rate, and when more may if none can. */
export interface RateRoom {
  room: number;
  /** The limit of the current minute (exponential only). */
  perMinute?: number;
  /** When the current minute ends and the room refills (exponential only). */
  nextAt?: number;
}

/**
 * `fixed`: no limit beyond the batch. `exponential`: minutes count from the rollout's first start;
 * a minute allows `start × factor^k` starts (at most `maxPerMinute`), where k is the number of
 * earlier minutes in which the rollout started any device. Counting only minutes with starts keeps
 * a rollout that waited hours (window, approval, budget) from resuming at full speed, as
 * Greengrass grows its rate with devices notified rather than with time.
 */
export function rateRoom(rate: RolloutRate, starts: readonly number[], now: number): RateRoom {
  if (rate.kind === 'fixed') return { room: Number.POSITIVE_INFINITY };
  const past = starts.filter((at) => at <= now);
  if (past.length === 0) return { room: rate.start, perMinute: rate.start, nextAt: now + MINUTE };
  const first = past.reduce((a, b) => Math.min(a, b));
  const minute = Math.floor((now - first) / MINUTE);
  const minuteStart = first + minute * MINUTE;
  const busyMinutes = new Set<number>();
  let used = 0;
  for (const at of past) {
    if (at >= minuteStart) used++;
    else busyMinutes.add(Math.floor((at - first) / MINUTE));
  }
  const perMinute = exponentialLimit(rate, busyMinutes.size);
  return { room: Math.max(0, perMinute - used), perMinute, nextAt: minuteStart + MINUTE };
}

/** `start × factor^steps`, rounded down, never below start nor above maxPerMinute. */
export function exponentialLimit(
  rate: Extract<RolloutRate, { kind: 'exponential' }>,
  steps: number,
): number {
  const grown = rate.start * Math.pow(rate.factor, steps);
  return Math.min(rate.maxPerMinute, Math.max(rate.start, Math.floor(grown)));
}
