import { resolveCount, type RolloutSpec } from '@podfleet/shared';

/** A device the rollout could change, as desired state resolves it now. */
export interface RolloutCandidate {
  id: string;
  labels: Readonly<Record<string, string>>;
  /** The image the device is meant to run for the service now. */
  image: string;
  /** Why the image is what it is: a device pin, or a pin of one of these groups. */
  pinnedBy?: { kind: 'device' } | { kind: 'group'; groups: readonly string[] };
}

export interface PlannedDevice {
  id: string;
  from: string;
  to: string;
  /** The rollout changes it although a group pins the service (the rollout names the group). */
  overGroupPin: boolean;
}

export interface PlannedBatch {
  index: number;
  kind: 'canary' | 'batch';
  devices: PlannedDevice[];
}

export interface RolloutPlan {
  batches: PlannedBatch[];
  /** Devices of the targets that the rollout leaves alone, and why. */
  excluded: { id: string; reason: string }[];
  total: number;
}

/**
 * The batches of a rollout, fixed when it starts: canary devices first (those labelled `canary`,
 * then by id), then batches of `batchSize`. Pinned devices stay out unless the rollout names the
 * pinning group in `overridePins`; a device pin always wins. Pure: `rollout plan` and `rollout
 * start` call the same function.
 */
export function planRollout(
  spec: RolloutSpec,
  targetImage: string,
  candidates: readonly RolloutCandidate[],
): RolloutPlan {
  const excluded: RolloutPlan['excluded'] = [];
  const included: PlannedDevice[] = [];
  const overridable = new Set(spec.overridePins);
  for (const candidate of [...candidates].sort(canaryFirst)) {
    const pin = candidate.pinnedBy;
    if (pin?.kind === 'device') {
      excluded.push({ id: candidate.id, reason: 'pinned on the device' });
      continue;
    }
    const overGroupPin = pin?.kind === 'group';
    if (pin?.kind === 'group' && !pin.groups.some((group) => overridable.has(group))) {
      excluded.push({ id: candidate.id, reason: `pinned by group ${pin.groups.join(', ')}` });
      continue;
    }
    if (candidate.image === targetImage) {
      excluded.push({ id: candidate.id, reason: `already runs ${targetImage}` });
      continue;
    }
    included.push({ id: candidate.id, from: candidate.image, to: targetImage, overGroupPin });
  }

  const batches: PlannedBatch[] = [];
  const canary = Math.min(spec.strategy.canary, included.length);
  if (canary > 0) batches.push({ index: 0, kind: 'canary', devices: included.slice(0, canary) });
  const rest = included.slice(canary);
  const size = Math.max(1, resolveCount(spec.strategy.batchSize, rest.length));
  for (let start = 0; start < rest.length; start += size) {
    batches.push({
      index: batches.length,
      kind: 'batch',
      devices: rest.slice(start, start + size),
    });
  }
  return { batches, excluded, total: included.length };
}

/**
 * Why the strategy's canary does not fit the devices the rollout changes: a canary as large as
 * them takes all and leaves no batch to follow it, so it is refused rather than cut to fit.
 */
export function canaryProblem(canary: number, plan: RolloutPlan): string | undefined {
  if (canary === 0 || plan.total === 0 || canary < plan.total) return undefined;
  const excluded = plan.excluded.length > 0 ? `, ${plan.excluded.length} left out` : '';
  return (
    `strategy.canary: ${canary} must be fewer than the ${plan.total} devices the rollout changes` +
    ` (a canary leaves devices for the batches${excluded})`
  );
}

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

const isCanary = (labels: Readonly<Record<string, string>>) =>
  'canary' in labels && !['false', 'no', '0'].includes(labels.canary!);

function canaryFirst(a: RolloutCandidate, b: RolloutCandidate): number {
  const order = Number(isCanary(b.labels)) - Number(isCanary(a.labels));
  return order !== 0 ? order : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
