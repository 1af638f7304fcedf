import { CliError } from './io.js';

/** A whole number from a flag or argument, or exit 2 naming it. */
export function parseInteger(name: string, text: string, min = -1_000_000): number {
  const value = /^-?\d{1,9}$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isInteger(value))
    throw new CliError([`${name}: must be a whole number, not ${text}`]);
  if (value < min) throw new CliError([`${name}: must be at least ${min}, not ${text}`]);
  return value;
}
