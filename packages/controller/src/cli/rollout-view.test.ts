import { describe, expect, it } from 'vitest';
import { RolloutSpec } from '@podfleet/shared';
import type { RolloutStatus } from '../rollouts/status.js';
import { emptyCounts } from '../rollouts/status.js';
import { renderRollout, stateText, statusLine } from './rollout-view.js';

const device = (
  id: string,
  batch: number,
  state: RolloutStatus['failures'][number]['state'],
  extra = {},
) => ({
  id,
  batch,
  state,
  from: 'r/web:1',
  to: 'r/web:2',
  online: true,
  ...extra,
});

function status(): RolloutStatus {
  const canary = [
    device('a', 0, 'succeeded'),
    device('b', 0, 'failed', { reason: 'web: not ready within 60s' }),
  ];
  const batch = [device('c', 1, 'updating', { online: false }), device('d', 1, 'pending')];
  const count = (devices: typeof canary) => {
    const counts = emptyCounts();
    for (const d of devices) {
      counts[d.state]++;
      if (!d.online) counts.offline++;
    }
    return counts;
  };
  return {
    id: '7d1c0c52-1111-4222-8333-944455556666',
    service: 'web',
    targetImage: 'r/web:2',
    state: 'running',
    spec: RolloutSpec.parse({ service: 'web', image: 'r/web:2', targets: { groups: ['edge'] } }),
    currentBatch: 1,
    awaitingApproval: false,
    waiting: [],
    approvedBatches: [],
    createdBy: 'ops',
    createdAt: '2026-11-29T10:00:00.000Z',
    counts: { ...count([...canary, ...batch]), total: 4 },
    batches: [
      { index: 0, kind: 'canary', state: 'done', total: 2, counts: count(canary) },
      { index: 1, kind: 'batch', state: 'running', total: 2, counts: count(batch) },
    ],
    failures: canary.filter((d) => d.state === 'failed'),
    excluded: [],
  };
}

describe('the rollout watch view', () => {
  it('shows a bar and counts per batch, the totals, and each failure with its reason', () => {
    expect(renderRollout(status())).toBe(
      [
        'rollout 7d1c0c52-1111-4222-8333-944455556666  web → r/web:2',
        'state running',
        '1/4 succeeded, 1 failed, 2 pending (1 offline), 0 skipped',
        '',
        '✓ canary  [############xxxxxxxxxxxx]   1/2 ok  1 failed',
        '▶ batch 1  [------------------------]   0/2 ok  2 pending (1 offline)',
        '',
        'failures:',
        '  b: web: not ready within 60s',
        '',
      ].join('\n'),
    );
  });

  it('caps the list of failures and counts those the status does not carry', () => {
    const s = status();
    s.failures.push(
      ...Array.from({ length: 12 }, (_, i) => device(`f${i}`, 1, 'failed', { reason: 'x' })),
    );
    // The API sends the first failures only; counts.failed has them all.
    s.counts.failed = 250;
    const text = renderRollout(s, 3);
    expect(text).toContain('  b: web: not ready within 60s\n  f0: x\n  f1: x\n  … and 247 more\n');
  });

  it('says why devices wait, how to approve, and each failure’s structured reason and unit', () => {
    const s = status();
    s.awaitingApproval = true;
    s.waiting = [
      '2 devices: budget of group site=berlin full: 2 of 4 updating or failed, maxUnavailable 2',
      '1 device: waiting for approval after batch 0',
    ];
    s.failures = [
      device('b', 0, 'failed', {
        reason: 'restarted during its bake',
        failure: { reason: 'crashed-after-start', unit: 'web.service', journal: [] },
      }),
    ];
    const text = renderRollout(s);
    expect(text).toContain(
      [
        'waiting:',
        '  2 devices: budget of group site=berlin full: 2 of 4 updating or failed, maxUnavailable 2',
        '  1 device: waiting for approval after batch 0',
        `  (podfleet rollout approve ${s.id})`,
      ].join('\n'),
    );
    expect(text).toContain('  b: crashed-after-start (web.service): restarted during its bake\n');
  });

  it('marks the failures an operator resumed over', () => {
    const s = status();
    s.failures = [
      device('b', 0, 'failed', { reason: 'web: not ready within 60s', accepted: true }),
      device('e', 1, 'failed', { reason: 'web: not ready within 60s' }),
    ];
    expect(renderRollout(s)).toContain(
      'failures:\n  b: web: not ready within 60s (accepted on resume)\n  e: web: not ready within 60s\n',
    );
  });
});

describe('the rollout watch view of what a device sent', () => {
  it('keeps a failure reason on its own line, its controls shown as escapes', () => {
    const s = status();
    s.failures = [{ ...s.failures[0]!, reason: 'bad\x1b[2J\n  z: fake failure\u202e' }];
    const lines = renderRollout(s).split('\n');
    expect(lines).toContain('  b: bad\\x1b[2J\\n  z: fake failure\\u202e');
    expect(lines.some((line) => line.startsWith('  z:'))).toBe(false);
  });
});

describe('statusLine', () => {
  it('says the state, the batch, the counts and why devices wait, on one line', () => {
    const held = {
      ...status(),
      awaitingApproval: true,
      waiting: ['batch 1: approval after canary'],
    };
    expect(statusLine(held)).toBe(
      'running (batch 1): 1/4 succeeded, 1 failed, 2 pending (1 offline); waiting: batch 1: approval after canary (podfleet rollout approve 7d1c0c52-1111-4222-8333-944455556666)',
    );
  });

  it('changes when only the hold changes, and keeps device text on its line', () => {
    const plain = status();
    const held = { ...plain, waiting: ['window opens 02:00\nUTC'] };
    expect(statusLine(held)).not.toBe(statusLine(plain));
    expect(statusLine(held)).not.toContain('\n');
  });
});

describe('a rollout that succeeded with failed devices', () => {
  const succeeded = (failed: number): RolloutStatus => {
    const base = status();
    const counts = { ...emptyCounts(), succeeded: 4 - failed, failed, total: 4 };
    return { ...base, state: 'succeeded', counts, failures: base.failures.slice(0, failed) };
  };

  it('says it accepted them, in the view, its failures and the one-line status', () => {
    const view = renderRollout(succeeded(1));
    expect(view).toContain('state succeeded with 1 failed device accepted\n');
    expect(view).toContain('  b: web: not ready within 60s (accepted)\n');
    expect(statusLine(succeeded(1))).toMatch(/^succeeded with 1 failed device accepted: 3\/4/);
  });

  it('is plainly succeeded without failures', () => {
    expect(stateText(succeeded(0))).toBe('succeeded');
    expect(stateText({ ...succeeded(2), state: 'failed' })).toBe('failed');
  });
});
