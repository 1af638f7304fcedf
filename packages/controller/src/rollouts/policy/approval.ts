export interface ApprovalBatch {
  index: number;
  kind: 'canary' | 'batch';
}

/**
 * The batch indices after which the rollout waits for an operator, from `approval.after`
 * (`canary` or indices as `rollout plan` shows them), with a problem naming the field for a name
 * the plan has no batch for. After the last batch there is nothing left to approve.
 */
export function approvalPoints(
  after: readonly ('canary' | number)[],
  batches: readonly ApprovalBatch[],
): { points: Set<number>; problems: string[] } {
  const points = new Set<number>();
  const problems: string[] = [];
  const last = batches.reduce((max, batch) => Math.max(max, batch.index), -1);
  after.forEach((name, i) => {
    const field = `strategy.policy.approval.after[${i}]`;
    const index = name === 'canary' ? batches.find((b) => b.kind === 'canary')?.index : name;
    if (index === undefined) problems.push(`${field}: the rollout has no canary batch`);
    else if (index > last) problems.push(`${field}: there is no batch ${index} (last is ${last})`);
    else if (index < last) points.add(index);
  });
  return { points, problems };
}

/** The batch whose approval the given batch waits for, if one is missing. */
export function missingApproval(
  points: ReadonlySet<number>,
  approved: ReadonlySet<number>,
  batch: number,
): number | undefined {
  const before = batch - 1;
  return points.has(before) && !approved.has(before) ? before : undefined;
}
