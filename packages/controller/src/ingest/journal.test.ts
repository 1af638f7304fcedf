import { appendFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IngestJournal } from './journal.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'podfleet-journal-'));
const payloads = (records: { payload: Buffer }[]) => records.map((r) => r.payload.toString());

describe('IngestJournal', () => {
  it('gives back what a crashed process wrote but never committed, in order', () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir);
    const seqs = ['a', 'b', 'c', 'd'].map((p) =>
      journal.append('pf/v1/dev/x/events', Buffer.from(p)),
    );
    expect(seqs).toEqual([1, 2, 3, 4]);
    journal.commit(2);
    // No close(): the process died.
    const left = IngestJournal.uncommitted(dir);
    expect(left.map((r) => [r.seq, r.topic])).toEqual([
      [3, 'pf/v1/dev/x/events'],
      [4, 'pf/v1/dev/x/events'],
    ]);
    expect(payloads(left)).toEqual(['c', 'd']);
  });

  it('continues the sequence after a restart, so replayed and new records commit in order', () => {
    const dir = fresh();
    const first = IngestJournal.open(dir);
    first.append('t', Buffer.from('1'));
    first.append('t', Buffer.from('2'));
    const second = IngestJournal.open(dir);
    expect(second.append('t', Buffer.from('3'))).toBe(3);
    second.commit(3);
    expect(IngestJournal.uncommitted(dir)).toEqual([]);
  });

  it('ignores a torn frame at the end of a segment (a crash in the middle of a write)', () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir);
    journal.append('t', Buffer.from('whole'));
    const [segment] = readdirSync(dir).filter((name) => name.startsWith('segment-'));
    appendFileSync(join(dir, segment!), Buffer.from([5, 0, 0, 0, 9, 0]));
    expect(payloads(IngestJournal.uncommitted(dir))).toEqual(['whole']);
  });

  it('starts new segments and deletes the ones whose records are all committed', () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir, 64);
    for (let i = 1; i <= 20; i++) journal.append('pf/v1/dev/x/state', Buffer.from(`record-${i}`));
    const segments = () => readdirSync(dir).filter((name) => name.startsWith('segment-')).length;
    const before = segments();
    expect(before).toBeGreaterThan(3);
    journal.commit(15);
    expect(segments()).toBeLessThan(before);
    expect(payloads(IngestJournal.uncommitted(dir))).toEqual([
      'record-16',
      'record-17',
      'record-18',
      'record-19',
      'record-20',
    ]);
  });

  it('keeps binary payloads intact', () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir);
    const bytes = Buffer.from([0, 255, 10, 13, 0]);
    journal.append('t', bytes);
    expect(IngestJournal.uncommitted(dir)[0]!.payload.equals(bytes)).toBe(true);
  });
});
