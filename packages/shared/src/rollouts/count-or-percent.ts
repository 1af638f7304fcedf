import { z } from 'zod';

/** A count (`5`) or a share of the devices (`"20%"`). */
export const CountOrPercent = z.union([
  z.number().int().min(0),
  z
    .string()
    .regex(/^(100|[1-9]?\d)(\.\d+)?%$/, { message: 'must be a count or a percentage like "20%"' }),
]);
export type CountOrPercent = z.infer<typeof CountOrPercent>;

/** Resolves a count or percentage against a total; a percentage rounds up so it is never 0 of many. */
export function resolveCount(value: CountOrPercent, total: number): number {
  if (typeof value === 'number') return Math.min(value, total);
  return Math.min(total, Math.ceil((Number(value.slice(0, -1)) / 100) * total));
}
