import { HttpError } from './errors.js';

/** Suggestions an answer carries at most. */
const MAX_SUGGESTIONS = 3;
/** More edits than this is another name, not a typo of it (Commander's `Did you mean` bar too). */
const MAX_EDITS = 3;

/**
 * Edits between two names, counting a swap of neighbours as one (optimal string alignment, the
 * distance Commander suggests subcommands by): `wbe` is one edit from `web`, as a typist sees it.
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) rows.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The known names a typo of `wanted` could have meant, closest first: at most 3 edits, and fewer
 * than 60% of the longer name (Commander's bars), so `sim-0O31` finds `sim-0031`, `nosuch` nothing.
 */
export function closeNames(wanted: string, known: Iterable<string>): string[] {
  const near: [name: string, edits: number][] = [];
  for (const name of known) {
    // A length gap over the bar cannot be within it: skipped before the quadratic work.
    if (Math.abs(name.length - wanted.length) > MAX_EDITS) continue;
    const edits = editDistance(wanted, name);
    const longer = Math.max(wanted.length, name.length);
    if (edits > 0 && edits <= MAX_EDITS && edits < longer * 0.6) near.push([name, edits]);
  }
  return near
    .sort(([a, x], [b, y]) => x - y || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, MAX_SUGGESTIONS)
    .map(([name]) => name);
}

/** `device sim-0O31 not found (did you mean sim-0031?)`: a 404 that helps with a typo. */
export function notFoundNear(what: string, known: Iterable<string>, wanted: string): HttpError {
  const close = closeNames(wanted, known);
  return new HttpError(
    404,
    `${what} not found${close.length ? ` (did you mean ${close.join(', ')}?)` : ''}`,
  );
}
