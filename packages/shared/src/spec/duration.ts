import { z } from 'zod';
import { printable } from './text.js';

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/** Parses `90`, `10s`, `1m30s`, `500ms` into seconds; undefined when it is not a duration. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isFinite(input) && input >= 0 ? input : undefined;
  const text = input.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Number.isFinite(Number(text)) ? Number(text) : undefined;
  if (!DURATION.test(text)) return undefined;
  let seconds = 0;
  for (const [, amount, unit] of text.matchAll(PART))
    seconds += Number(amount) * UNIT_SECONDS[unit!]!;
  seconds = Math.round(seconds * 1000) / 1000;
  return Number.isFinite(seconds) ? seconds : undefined;
}

/** Seconds as a Go duration (`1m30s`, `500ms`), the form Podman's duration flags print and read. */
export function formatDuration(seconds: number): string {
  let ms = Math.round(seconds * 1000);
  if (ms === 0) return '0s';
  let out = '';
  const h = Math.floor(ms / 3_600_000);
  ms -= h * 3_600_000;
  const m = Math.floor(ms / 60_000);
  ms -= m * 60_000;
  if (h) out += `${h}h`;
  if (m) out += `${m}m`;
  if (ms)
    out += ms % 1000 === 0 ? `${ms / 1000}s` : h || m || ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`;
  return out;
}

/** A duration field: accepts seconds or a Go-style string, yields seconds. */
export const duration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const seconds = parseDuration(value);
  if (seconds === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `not a duration: ${printable(JSON.stringify(value), 40)} (use seconds or e.g. 10s, 1m30s, 500ms)`,
    });
    return z.NEVER;
  }
  return seconds;
});

/**
 * The longest wait a rollout or service spec may name (health timeout, bake, ready timeout,
 * settle, health interval, …): seven days. Longer is a typo (`1e12`, `60h` for `60m`), and Node's
 * timers overflow past 24.8 days.
 */
export const MAX_SPEC_DURATION = 7 * 86_400;

/** A duration of a rollout or service spec: at most MAX_SPEC_DURATION. */
export const specDuration = duration.pipe(
  z.number().max(MAX_SPEC_DURATION, { message: 'must be at most 168h (7 days)' }),
);
