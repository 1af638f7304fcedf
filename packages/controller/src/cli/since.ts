import type { StringValue } from 'ms';
import { CliError } from './io.js';

/** How long ago, as `ms` reads it: a number and a unit (`10m`, `2h`, `3d`, `1.5h`, `90s`). */
const AGO = /^\d+(?:\.\d+)?\s*[a-z]+$/i;

/**
 * A `--since` value as the API takes it (an ISO time): an ISO date-time passes as given (the
 * controller checks it and names the flag), how long ago becomes now minus that. A bare number is
 * refused rather than guessed at (ms would read `10` as 10 milliseconds).
 */
export async function sinceTime(
  flag: string,
  text: string | undefined,
  now = Date.now(),
): Promise<string | undefined> {
  if (text === undefined) return undefined;
  const given = text.trim();
  if (/^\d{4}-\d{2}-\d{2}T/.test(given)) return given;
  if (AGO.test(given)) {
    // ms loads here, not with the CLI: only a command given --since needs it.
    const { default: ms } = await import('ms');
    const span = ms(given as StringValue);
    if (Number.isFinite(span) && span > 0) return new Date(now - span).toISOString();
  }
  throw new CliError([
    `${flag}: not a time: ${JSON.stringify(text)} (give how long ago, e.g. 10m, 2h, 3d, or an ISO time, e.g. 2026-12-01T10:00:00Z)`,
  ]);
}
