import { z } from 'zod';

/**
 * Bounds on everything a device sends (docs/security.md, "What a device may send"). A device is
 * untrusted input: the controller refuses a message outside these bounds before it reaches the
 * journal or the database, and the agent clips its own free text to them before it sends.
 */
export const DEVICE_LIMITS = {
  /** Bytes of one MQTT payload, checked before it is parsed. */
  stateBytes: 256 * 1024,
  eventBytes: 32 * 1024,
  onlineBytes: 64,
  /** Names, versions, ids, states: one short line. */
  name: 256,
  /** An image reference (repository, tag and digest). */
  image: 1024,
  /** Reasons, messages, details: a paragraph. */
  text: 4096,
  journalLines: 50,
  journalLine: 512,
  /** Services in one state report, results in one auto-update event. */
  services: 256,
  /** Generations and restart counts are stored as Postgres `integer`. */
  integer: 2_147_483_647,
  /** Device timestamps are kept as the device's own, within what a clock can plausibly say. */
  earliest: Date.UTC(1970, 0, 1),
  latest: Date.UTC(2200, 0, 1),
} as const;

/** Why a string from a device cannot be stored, or undefined when it can. */
export function deviceTextProblem(value: string): string | undefined {
  // Postgres' jsonb refuses both, and with them the whole batch the message came in.
  if (value.includes('\u0000')) return 'NUL not allowed';
  if (!value.isWellFormed()) return 'invalid Unicode (lone surrogate) not allowed';
  return undefined;
}

/** A string a device sends: at most `max` characters, storable as it is. */
export function deviceText(max: number) {
  return z
    .string()
    .max(max)
    .superRefine((value, ctx) => {
      const problem = deviceTextProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}

/** A count the controller stores in an `integer` column. */
export const deviceCount = z.number().int().min(0).max(DEVICE_LIMITS.integer);

/** A timestamp by the device's clock: ISO 8601 in UTC, from 1970 until 2200. */
export const deviceTime = z.iso.datetime().superRefine((value, ctx) => {
  const time = Date.parse(value);
  if (!(time >= DEVICE_LIMITS.earliest && time < DEVICE_LIMITS.latest))
    ctx.addIssue({ code: 'custom', message: 'must be from 1970 until 2200' });
});

const CLIPPED = ' …(clipped)';

/**
 * `value` cut to `max` characters (marked, so a reader sees it was cut), with NUL and lone
 * surrogates replaced: what an agent does with text it did not write (podman's and journald's).
 */
export function clipDeviceText(value: string, max: number): string {
  const clean = value.toWellFormed().replaceAll('\u0000', '\uFFFD');
  if (clean.length <= max) return clean;
  return clean.slice(0, Math.max(0, max - CLIPPED.length)).toWellFormed() + CLIPPED;
}
