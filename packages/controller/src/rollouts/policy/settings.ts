import type {
  AbortCriteria,
  DisruptionBudget,
  OfflinePolicy,
  RolloutRate,
  RolloutSpec,
} from '@podfleet/shared';
import { approvalPoints, type ApprovalBatch } from './approval.js';
import type { Threshold, VerdictTiming } from './success.js';
import { compileWindows, type CompiledWindow } from './windows.js';

/**
 * A rollout's strategy with its policy folded in: what the tick and the plan decide by. Without
 * a policy this is the strategy as it always was (no bake, windows, budget or rate; approval
 * after the canary when approveAfterCanary); every part of a policy replaces its strategy field.
 */
export interface EffectiveSettings {
  timing: VerdictTiming;
  threshold: Threshold;
  bakeBetweenBatches: number;
  offlineDevices: OfflinePolicy;
  approvalPoints: Set<number>;
  windows: CompiledWindow[];
  budget?: DisruptionBudget;
  rate: RolloutRate;
  abort?: AbortCriteria;
  /** Problems that make the policy unusable, each naming its field (`rollout plan` shows them). */
  problems: string[];
}

/** The plan's batches as approvals name them: batch 0 is the canary when the strategy has one. */
export function batchKinds(batchCount: number, canary: number): ApprovalBatch[] {
  return Array.from({ length: batchCount }, (_, index) => ({
    index,
    kind: index === 0 && canary > 0 ? 'canary' : 'batch',
  }));
}

export function effectiveSettings(
  strategy: RolloutSpec['strategy'],
  batches: readonly ApprovalBatch[],
): EffectiveSettings {
  const policy = strategy.policy;
  const problems: string[] = [];
  const points = new Set<number>();
  const canary = batches.find((batch) => batch.kind === 'canary');
  if (strategy.approveAfterCanary && canary && batches.length > 1) points.add(canary.index);
  if (policy?.approval) {
    const approvals = approvalPoints(policy.approval.after, batches);
    problems.push(...approvals.problems);
    for (const point of approvals.points) points.add(point);
  }
  const windows = compileWindows(policy?.windows ?? []);
  problems.push(...windows.problems);
  const settings: EffectiveSettings = {
    timing: { bake: policy?.bake ?? 0, healthTimeout: strategy.healthTimeout },
    threshold:
      policy?.successThreshold !== undefined
        ? { successThreshold: policy.successThreshold }
        : { maxFailures: strategy.maxFailures },
    bakeBetweenBatches: policy?.bakeBetweenBatches ?? strategy.pauseBetweenBatches,
    offlineDevices: policy?.offlineDevices ?? strategy.offlineDevices,
    approvalPoints: points,
    windows: windows.windows,
    rate: policy?.rate ?? { kind: 'fixed' },
    problems,
  };
  if (policy?.disruptionBudget) settings.budget = policy.disruptionBudget;
  if (policy?.abort) settings.abort = policy.abort;
  return settings;
}
