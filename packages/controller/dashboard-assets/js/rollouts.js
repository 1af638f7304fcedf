// @ts-check
import { ApiError, TokenRefused } from './api.js';
import { deviceButton, timestamp } from './format.js';
import { h } from './view-node.js';

/**
 * @typedef {'pending' | 'updating' | 'succeeded' | 'failed' | 'skipped' | 'reverting' | 'reverted'
 *   | 'deferred'} DeviceState
 * @typedef {Record<DeviceState | 'offline', number>} Counts
 * @typedef {'pull-failed' | 'start-timeout' | 'unhealthy' | 'crashed-after-start' | 'rolled-back'
 *   | 'rejected-manifest'} FailureReason
 * @typedef {{ reason: FailureReason, unit?: string, detail?: string, journal: string[] }} DeviceFailure
 * @typedef {{
 *   id: string, batch: number, state: DeviceState, from: string, to: string, reason?: string,
 *   online: boolean, hold?: string, failure?: DeviceFailure, accepted?: boolean
 * }} RolloutDevice
 * @typedef {{
 *   index: number, kind: 'canary' | 'batch', state: 'pending' | 'running' | 'done',
 *   total: number, counts: Counts
 * }} Batch
 * @typedef {{
 *   id: string, service: string, targetImage: string, state: string, reason?: string,
 *   currentBatch: number, awaitingApproval: boolean, waiting: string[], approvedBatches: number[],
 *   createdBy: string, createdAt: string, finishedAt?: string, counts: Counts & { total: number },
 *   batches: Batch[], failures: RolloutDevice[], excluded: { id: string, reason: string }[]
 * }} RolloutStatus
 * @typedef {{
 *   id: string, service: string, targetImage: string, state: string, reason?: string,
 *   createdBy: string, createdAt: string
 * }} RolloutSummary
 * @typedef {{ busy: boolean, error?: string }} Approval an approval sent from this page
 * @typedef {{
 *   summary: RolloutSummary, status?: RolloutStatus, happenings: string[], approval?: Approval
 * }} RolloutEntry
 */

/** States in which a rollout still changes: its stream is followed. */
export const ACTIVE_STATES = ['pending', 'running', 'paused', 'rolling_back'];

/** Device states drawn in the bar, in this order; the rest of the bar is pending. */
const SEGMENTS = /** @type {const} */ ([
  'succeeded',
  'failed',
  'reverted',
  'reverting',
  'skipped',
  'updating',
  'deferred',
]);
/** Not finished: still to be updated, now or (deferred) when the device returns. */
const UNFINISHED = /** @type {const} */ (['pending', 'updating', 'reverting', 'deferred']);
/** Columns shown only when some device of the rollout is in that state. */
const OCCASIONAL = /** @type {const} */ (['reverted', 'reverting', 'skipped', 'deferred']);

/**
 * The newest rollouts, each with its batches' live progress and its failed devices.
 * @param {RolloutEntry[]} entries
 * @param {string | undefined} selected
 */
export function rolloutsView(entries, selected) {
  if (entries.length === 0) return h('p', { class: 'hint' }, 'No rollout yet.');
  return h(
    'div',
    {},
    entries.map((entry) => rolloutView(entry, selected)),
  );
}

/**
 * @param {RolloutEntry} entry
 * @param {string | undefined} selected
 */
function rolloutView({ summary, status, happenings, approval }, selected) {
  const state = status?.state ?? summary.state;
  const reason = status ? status.reason : summary.reason;
  const headingId = `rollout-${summary.id}`;
  return h(
    'article',
    { class: 'rollout', 'data-rollout': summary.id, 'aria-labelledby': headingId },
    h(
      'header',
      {},
      h('h3', { id: headingId }, `${summary.service} → `, h('code', {}, summary.targetImage)),
      h('span', { class: `state state-${state}` }, state.replace('_', ' ')),
      // A success with failed devices leaves them on the old image: said, never hidden.
      state === 'succeeded' &&
        status &&
        status.counts.failed > 0 &&
        h('span', { class: 'tag warn' }, `${status.counts.failed} failed, accepted`),
    ),
    h(
      'p',
      { class: 'meta' },
      `started by ${summary.createdBy}, `,
      timestamp(summary.createdAt),
      status && `; at ${currentBatchName(status).toLowerCase()}, ${status.batches.length} in all`,
      status?.awaitingApproval && '; awaiting approval',
    ),
    reason && h('p', { class: 'reason' }, reason),
    status?.awaitingApproval && approvalView(status, approval),
    status && statusView(status, selected),
    happenings.length > 0 &&
      h(
        'ul',
        { class: 'happenings', 'aria-label': 'What just happened, newest first' },
        happenings.map((line) => h('li', {}, line)),
      ),
  );
}

/**
 * @param {RolloutStatus} status
 * @param {string | undefined} selected
 */
function statusView(status, selected) {
  const { counts } = status;
  const occasional = OCCASIONAL.filter((state) => counts[state] > 0);
  // The status carries the first failures only (counts.failed has them all).
  const failed = status.failures.flatMap((device) => {
    const batch = status.batches.find((b) => b.index === device.batch);
    return batch ? [{ batch, device }] : [];
  });
  const unlisted = Math.max(0, counts.failed - failed.length);
  return h(
    'div',
    {},
    h(
      'p',
      { class: 'totals' },
      `${counts.succeeded} of ${counts.total} devices succeeded, ${counts.failed} failed, `,
      `${counts.pending + counts.updating} waiting (${counts.offline} offline)`,
      counts.deferred > 0 && `, ${counts.deferred} deferred until they return`,
      status.excluded.length > 0 && `, ${status.excluded.length} excluded`,
    ),
    h(
      'table',
      { class: 'batches' },
      h('caption', { class: 'visually-hidden' }, `Batches of the ${status.service} rollout`),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Batch', 'State', 'Progress', 'Succeeded', 'Failed'].map((name) =>
            h('th', { scope: 'col' }, name),
          ),
          occasional.map((name) => h('th', { scope: 'col' }, capitalized(name))),
          ['Updating', 'Pending', 'Offline'].map((name) => h('th', { scope: 'col' }, name)),
        ),
      ),
      h(
        'tbody',
        {},
        status.batches.map((batch) =>
          h(
            'tr',
            { 'data-batch': batch.index, class: `batch-${batch.state}` },
            h('th', { scope: 'row' }, batchName(batch)),
            h('td', {}, batch.state),
            h('td', {}, progressBar(batch)),
            h('td', { class: 'num', 'data-count': 'succeeded' }, batch.counts.succeeded),
            h('td', { class: 'num', 'data-count': 'failed' }, batch.counts.failed),
            occasional.map((name) =>
              h('td', { class: 'num', 'data-count': name }, batch.counts[name]),
            ),
            h('td', { class: 'num', 'data-count': 'updating' }, batch.counts.updating),
            h('td', { class: 'num', 'data-count': 'pending' }, batch.counts.pending),
            h('td', { class: 'num', 'data-count': 'offline' }, batch.counts.offline),
          ),
        ),
      ),
    ),
    waitingView(status),
    failed.length > 0 &&
      h(
        'table',
        { class: 'failed' },
        h(
          'caption',
          {},
          'Failed devices',
          unlisted > 0 && ` (the first ${failed.length}; ${unlisted} more)`,
        ),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Device', 'Batch', 'Failure', 'Reason'].map((name) => h('th', { scope: 'col' }, name)),
          ),
        ),
        h(
          'tbody',
          {},
          failed.map(({ batch, device }) =>
            h(
              'tr',
              {},
              h('th', { scope: 'row' }, deviceButton(device.id, selected)),
              h('td', {}, batchName(batch)),
              h('td', {}, failureCause(device.failure)),
              h(
                'td',
                { class: 'reason' },
                device.reason ?? 'no reason reported',
                device.accepted && h('span', { class: 'muted' }, ' (accepted on resume)'),
                device.failure && journalView(status.id, device.id, device.failure),
              ),
            ),
          ),
        ),
      ),
    status.excluded.length > 0 &&
      h(
        'details',
        { class: 'excluded', 'data-keep-open': `excluded-${status.id}` },
        h('summary', {}, `${status.excluded.length} devices left out`),
        h(
          'ul',
          {},
          status.excluded.map((d) => h('li', {}, deviceButton(d.id, selected), `: ${d.reason}`)),
        ),
      ),
  );
}

/**
 * What holds devices back now, one line per reason with how many; nothing when none waits.
 * @param {RolloutStatus} status
 */
function waitingView(status) {
  if (status.waiting.length === 0) return undefined;
  const titleId = `waiting-${status.id}`;
  return h(
    'div',
    { class: 'waiting' },
    h('p', { id: titleId, class: 'waiting-title' }, 'Why devices wait'),
    h(
      'ul',
      { 'aria-labelledby': titleId },
      status.waiting.map((line) => h('li', {}, line)),
    ),
  );
}

/**
 * The button that lets the batch an approval holds start, and why the last press failed.
 * @param {RolloutStatus} status
 * @param {Approval | undefined} approval
 */
function approvalView(status, approval) {
  const name = currentBatchName(status);
  const errorId = `approve-error-${status.id}`;
  return h(
    'div',
    { class: 'approval' },
    h(
      'button',
      {
        type: 'button',
        class: 'approve',
        'data-approve': status.id,
        // aria-disabled, not disabled: the button keeps keyboard focus while the answer comes.
        'aria-disabled': approval?.busy ? 'true' : undefined,
        'aria-describedby': approval?.error ? errorId : undefined,
      },
      `Approve ${name.toLowerCase()}`,
    ),
    approval?.busy && h('span', { class: 'muted' }, ' Approving…'),
    approval?.error && h('p', { id: errorId, class: 'error' }, approval.error),
  );
}

/**
 * Approves the batch an approval holds. Answers the rollout's new status, or the controller's
 * reason for refusing (a viewer token, no approval pending); a refused token still throws.
 * @param {{ post(path: string): Promise<unknown> }} api
 * @param {string} id
 * @returns {Promise<{ status: RolloutStatus } | { error: string }>}
 */
export async function approveBatch(api, id) {
  try {
    const status = await api.post(`/v1/rollouts/${encodeURIComponent(id)}/approve`);
    return { status: /** @type {RolloutStatus} */ (status) };
  } catch (error) {
    if (error instanceof TokenRefused) throw error;
    const why =
      error instanceof ApiError ? error.detail : error instanceof Error ? error.message : error;
    return { error: `Cannot approve: ${why}` };
  }
}

/**
 * The agent's classification of a failure and the unit it concerns: "rolled-back web.service".
 * @param {DeviceFailure | undefined} failure
 */
function failureCause(failure) {
  if (!failure) return h('span', { class: 'muted' }, '—');
  return h(
    'span',
    { class: 'cause' },
    h('span', { class: 'tag failure' }, failure.reason),
    failure.unit && h('code', {}, failure.unit),
  );
}

/**
 * The failed unit's last journald lines, folded away.
 * @param {string} rolloutId
 * @param {string} deviceId
 * @param {DeviceFailure} failure
 */
function journalView(rolloutId, deviceId, failure) {
  const lines = failure.journal.length;
  if (lines === 0) return undefined;
  return h(
    'details',
    { class: 'journal', 'data-keep-open': `journal-${rolloutId}-${deviceId}` },
    h(
      'summary',
      {},
      `Journal of ${failure.unit ?? 'the unit'}: last ${lines} line${lines === 1 ? '' : 's'}`,
    ),
    h('pre', {}, failure.journal.join('\n')),
  );
}

/**
 * A bar with one segment per state reached (pending is the empty rest); its text alternative says
 * the same in words. Only succeeded, failed, reverted and skipped devices count as finished.
 * @param {Batch} batch
 */
export function progressBar(batch) {
  const total = batch.total;
  const done = UNFINISHED.reduce((left, state) => left - batch.counts[state], total);
  const parts = SEGMENTS.filter((state) => batch.counts[state] > 0);
  const words = parts.map((state) => `${batch.counts[state]} ${state}`);
  if (batch.counts.pending > 0) words.push(`${batch.counts.pending} pending`);
  return h(
    'div',
    { class: 'progress' },
    h(
      'div',
      {
        class: 'bar',
        role: 'img',
        'aria-label': `${done} of ${total} finished: ${words.join(', ') || 'no device'}`,
      },
      parts.map((state) =>
        h('span', {
          class: `segment ${state}`,
          style: { width: `${(100 * batch.counts[state]) / Math.max(1, total)}%` },
        }),
      ),
    ),
    h('span', { class: 'fraction' }, `${done}/${total}`),
  );
}

/**
 * A batch by the number the engine, the CLI and the hold lines use: its index, from 0, with the
 * canary (always batch 0) named "Canary". Without a canary the first batch is "Batch 0".
 * @param {Batch} batch
 */
function batchName(batch) {
  return batch.kind === 'canary' ? 'Canary' : `Batch ${batch.index}`;
}

/** @param {RolloutStatus} status */
function currentBatchName(status) {
  const current = status.batches.find((batch) => batch.index === status.currentBatch);
  return current ? batchName(current) : `Batch ${status.currentBatch}`;
}

/** @param {string} word */
function capitalized(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}
