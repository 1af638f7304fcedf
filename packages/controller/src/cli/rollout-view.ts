import type { RolloutStatus } from '../rollouts/status.js';
import { visible } from './terminal-text.js';

const BAR = 24;

/** A bar of done (#), failed (x) and still-to-go (-) shares of a batch. */
function bar(done: number, failed: number, total: number): string {
  if (total === 0) return `[${'-'.repeat(BAR)}]`;
  const ok = Math.round((done / total) * BAR);
  const bad = Math.min(BAR - ok, Math.round((failed / total) * BAR));
  return `[${'#'.repeat(ok)}${'x'.repeat(bad)}${'-'.repeat(BAR - ok - bad)}]`;
}

/**
 * The live view of `podfleet rollout watch`: the rollout's state, a progress bar per batch with
 * counts, and the failures with their reasons. Pure, so it is tested without a terminal.
 */
export function renderRollout(status: RolloutStatus, maxFailures = 10): string {
  const c = status.counts;
  const lines = [
    `rollout ${status.id}  ${status.service} → ${status.targetImage}`,
    `state ${stateText(status)}${status.reason ? ` — ${status.reason}` : ''}`,
    `${c.succeeded}/${c.total} succeeded, ${c.failed} failed, ${c.pending + c.updating} pending (${c.offline} offline), ${c.skipped} skipped${c.deferred ? `, ${c.deferred} deferred` : ''}${c.reverting + c.reverted ? `, ${c.reverted} reverted, ${c.reverting} reverting` : ''}`,
    '',
  ];
  for (const batch of status.batches) {
    const b = batch.counts;
    const total = batch.total;
    const done = b.succeeded + b.skipped + b.reverted;
    const name = batch.kind === 'canary' ? 'canary ' : `batch ${String(batch.index).padEnd(2)}`;
    const mark = batch.state === 'running' ? '▶' : batch.state === 'done' ? '✓' : ' ';
    lines.push(
      `${mark} ${name} ${bar(done, b.failed, total)} ${String(b.succeeded).padStart(3)}/${total} ok` +
        `${b.failed ? `  ${b.failed} failed` : ''}${b.pending + b.updating ? `  ${b.pending + b.updating} pending` : ''}` +
        `${b.offline ? ` (${b.offline} offline)` : ''}${b.skipped ? `  ${b.skipped} skipped` : ''}${b.deferred ? `  ${b.deferred} deferred` : ''}${b.reverting ? `  ${b.reverting} reverting` : ''}`,
    );
  }
  // Why devices wait (window, budget, rate, approval, bake, offline), as the engine said last.
  if (status.waiting.length > 0) {
    lines.push('', 'waiting:');
    for (const line of status.waiting) lines.push(`  ${line}`);
    if (status.awaitingApproval) lines.push(`  (podfleet rollout approve ${status.id})`);
  }
  // The status carries the first failures only; counts.failed is how many there are.
  const failures = status.failures;
  if (failures.length > 0) {
    lines.push('', 'failures:');
    for (const device of failures.slice(0, maxFailures))
      lines.push(
        `  ${device.id}: ${device.failure ? `${device.failure.reason}${device.failure.unit ? ` (${device.failure.unit})` : ''}: ` : ''}${device.reason ?? 'failed'}${device.accepted ? ' (accepted on resume)' : status.state === 'succeeded' ? ' (accepted)' : ''}`,
      );
    const more = Math.max(c.failed, failures.length) - Math.min(maxFailures, failures.length);
    if (more > 0) lines.push(`  … and ${more} more`);
  }
  // Reasons and ids come from devices: each stays on its own line, controls shown as escapes.
  return `${lines.map((line) => visible(line)).join('\n')}\n`;
}

/**
 * One line per status for a pipe or a log (`rollout watch` without a terminal): state, counts and
 * why devices wait, so a hold such as an approval shows when it begins and when it ends.
 */
export function statusLine(status: RolloutStatus): string {
  const c = status.counts;
  const batch = status.batches.find((b) => b.index === status.currentBatch);
  const where = batch && status.state === 'running' ? ` (${batchName(batch)})` : '';
  const waiting = status.waiting.length > 0 ? `; waiting: ${status.waiting.join('; ')}` : '';
  const approve = status.awaitingApproval ? ` (podfleet rollout approve ${status.id})` : '';
  return visible(
    `${stateText(status)}${where}: ${c.succeeded}/${c.total} succeeded, ${c.failed} failed, ` +
      `${c.pending + c.updating} pending (${c.offline} offline)${waiting}${approve}` +
      `${status.reason ? ` — ${status.reason}` : ''}`,
  );
}

/**
 * The rollout's state, and for one that succeeded with failed devices how many it accepted
 * (within maxFailures, or resumed over): those devices do not run the target image.
 */
export function stateText(status: Pick<RolloutStatus, 'state' | 'counts'>): string {
  const failed = status.counts.failed;
  if (status.state !== 'succeeded' || failed === 0) return status.state;
  return `succeeded with ${failed} failed device${failed === 1 ? '' : 's'} accepted`;
}

function batchName(batch: { index: number; kind: 'canary' | 'batch' }): string {
  return batch.kind === 'canary' ? 'canary' : `batch ${batch.index}`;
}
