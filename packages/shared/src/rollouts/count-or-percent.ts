import { z } from 'zod';

const PERCENT = /^(\d+(?:\.\d+)?)%$/;
const NOT_COUNT_OR_PERCENT = 'must be a count or a percentage like "20%"';

/** Why `value` is not a count or percentage of at least `least` devices and at most 100%. */
function countOrPercentProblem(value: number | string, least: 0 | 1): string | undefined {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) return NOT_COUNT_OR_PERCENT;
    if (value < least)
      return least === 1 ? 'must be at least 1 (or above 0%)' : 'must be at least 0';
    return undefined;
  }
  const match = PERCENT.exec(value);
  if (!match) return NOT_COUNT_OR_PERCENT;
  const share = Number(match[1]);
  if (share > 100) return 'must be at most 100%';
  if (least === 1 && share === 0) return 'must be above 0% (or at least 1)';
  return undefined;
}

/**
 * A count (`5`) or a share of the devices (`"20%"`), never above 100%. With `least: 1` it must
 * name at least one device: a count of 0 or `"0%"` is refused rather than read as 1.
 */
const countOrPercent = (least: 0 | 1) =>
  z.union([z.number(), z.string()]).superRefine((value, ctx) => {
    const problem = countOrPercentProblem(value, least);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A count or percentage from 0 to 100% (`maxFailures`, `minAvailable`). */
export const CountOrPercent = countOrPercent(0);
/** A count of at least 1 or a percentage above 0% (`batchSize`, `successThreshold`). */
export const PositiveCountOrPercent = countOrPercent(1);
export type CountOrPercent = z.infer<typeof CountOrPercent>;

/** A share of the devices, `"20%"` (never a count), from 0% to 100%. */
export const Percent = z.string().superRefine((value, ctx) => {
  const match = PERCENT.exec(value);
  if (!match) ctx.addIssue({ code: 'custom', message: 'must be a percentage like "20%"' });
  else if (Number(match[1]) > 100)
    ctx.addIssue({ code: 'custom', message: 'must be at most 100%' });
});

/** Resolves a count or percentage against a total; a percentage rounds up so it is never 0 of many. */
export function resolveCount(value: CountOrPercent, total: number): number {
  if (typeof value === 'number') return Math.min(value, total);
  return Math.min(total, Math.ceil((Number(value.slice(0, -1)) / 100) * total));
}
