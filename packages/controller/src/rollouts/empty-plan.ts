import type { RolloutPlan } from './plan.js';

// Its own file, importing only a type: `podfleet rollout plan` loads it without the server.
/**
 * Why a plan changes no device, in one line, or undefined when it changes some: the reasons its
 * devices were left out, counted (`already runs …: 2, pinned on the device: 1`), or that the targets
 * hold no device that runs the service. `rollout plan` and `rollout start` both end on it.
 */
export function emptyPlanProblem(
  service: string,
  plan: Pick<RolloutPlan, 'total' | 'excluded'>,
): string | undefined {
  if (plan.total > 0) return undefined;
  if (plan.excluded.length === 0)
    return `no device to roll ${service} out to: no targeted device runs ${service}`;
  const counts = new Map<string, number>();
  for (const { reason } of plan.excluded) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  const reasons = [...counts].map(([reason, n]) => `${reason}: ${n}`).join(', ');
  return `no device to roll ${service} out to: every targeted device is left out (${reasons})`;
}
