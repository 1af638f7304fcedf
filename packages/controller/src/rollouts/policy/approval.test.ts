import { describe, expect, it } from 'vitest';
import { approvalPoints, missingApproval } from './approval.js';

const batches = [
  { index: 0, kind: 'canary' as const },
  { index: 1, kind: 'batch' as const },
  { index: 2, kind: 'batch' as const },
  { index: 3, kind: 'batch' as const },
];

describe('approvalPoints', () => {
  it('resolves canary and indices', () => {
    const { points, problems } = approvalPoints(['canary', 2], batches);
    expect([...points].sort()).toEqual([0, 2]);
    expect(problems).toEqual([]);
  });

  it('names the field for a batch the plan lacks, and ignores the last batch', () => {
    const { points, problems } = approvalPoints(['canary', 7, 3], batches.slice(1));
    expect(points.size).toBe(0);
    expect(problems).toEqual([
      'strategy.policy.approval.after[0]: the rollout has no canary batch',
      'strategy.policy.approval.after[1]: there is no batch 7 (last is 3)',
    ]);
  });
});

describe('missingApproval', () => {
  it('holds the batch after an approval point until it is approved', () => {
    const points = new Set([0, 2]);
    expect(missingApproval(points, new Set(), 1)).toBe(0);
    expect(missingApproval(points, new Set([0]), 1)).toBeUndefined();
    expect(missingApproval(points, new Set([0]), 2)).toBeUndefined();
    expect(missingApproval(points, new Set([0]), 3)).toBe(2);
    expect(missingApproval(points, new Set(), 0)).toBeUndefined();
  });
});
