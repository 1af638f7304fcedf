import { appendFileSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IngestJournal } from './journal.js';

const fresh = () => mkdtempSync(join(tmpdir(), 'podfleet-journal-'));
const payloads = (records: { payload: Buffer }[]) => records.map((r) => r.payload.toString());

describe('IngestJournal', () => {
  it('keeps each record’s receive time, and reads records of journals written before it did', () => {
    const dir = fresh();
    // A frame as older controllers wrote it: topic length, payload length, FNV-1a, topic, payload.
    const topic = Buffer.from('pf/v1/dev/x/state');
    const payload = Buffer.from('{"old":true}');
    const old = Buffer.alloc(12 + topic.length + payload.length);
    old.writeUInt32LE(topic.length, 0);
    old.writeUInt32LE(payload.length, 4);
    topic.copy(old, 12);
    payload.copy(old, 12 + topic.length);
    let hash = 0x811c9dc5;
    for (let i = 12; i < old.length; i++) hash = Math.imul(hash ^ old[i]!, 0x01000193);
    old.writeUInt32LE(hash >>> 0, 8);
    appendFileSync(join(dir, `segment-${'1'.padStart(16, '0')}.log`), old);

    const journal = IngestJournal.open(dir);
    journal.append('pf/v1/dev/x/events', Buffer.from('new'), 1_765_000_000_123);
    journal.write();
    const records = IngestJournal.uncommitted(dir);
    expect(records.map((r) => [r.seq, r.topic, r.payload.toString(), r.receivedAt])).toEqual([
      [1, 'pf/v1/dev/x/state', '{"old":true}', undefined],
      [2, 'pf/v1/dev/x/events', 'new', 1_765_000_000_123],
    ]);
  });

  it('gives back what a crashed process wrote but never committed, in order', async () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir);
    const seqs = ['a', 'b', 'c', 'd'].map((p) =>
      journal.append('pf/v1/dev/x/events', Buffer.from(p)),
    );
    expect(seqs).toEqual([1, 2, 3, 4]);
    journal.write();
    await journal.commit(2);
    // No close(): the process died.
    const left = IngestJournal.uncommitted(dir);
    expect(left.map((r) => [r.seq, r.topic])).toEqual([
      [3, 'pf/v1/dev/x/events'],
      [4, 'pf/v1/dev/x/events'],
    ]);
    expect(payloads(left)).toEqual(['c', 'd']);
  });

  it('continues the sequence after a restart, so replayed and new records commit in order', async () => {
    const dir = fresh();
    const first = IngestJournal.open(dir);
    first.append('t', Buffer.from('1'));
    first.append('t', Buffer.from('2'));
    first.write();
    const second = IngestJournal.open(dir);
    expect(second.append('t', Buffer.from('3'))).toBe(3);
    second.write();
    await second.commit(3);
    expect(IngestJournal.uncommitted(dir)).toEqual([]);
  });

  it('holds appended records until write, then puts them all in the file', () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir);
    journal.append('t', Buffer.from('1'));
    journal.append('t', Buffer.from('2'));
    expect(journal.pending).toBe(true);
    expect(IngestJournal.uncommitted(dir)).toEqual([]);
    journal.write();
    expect(journal.pending).toBe(false);
    expect(payloads(IngestJournal.uncommitted(dir))).toEqual(['1', '2']);
  });

  it('never moves the checkpoint back when commits are asked for out of order', async () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir);
    for (const p of ['1', '2', '3', '4', '5']) journal.append('t', Buffer.from(p));
    journal.write();
    const commits = [journal.commit(1), journal.commit(4), journal.commit(3), journal.commit(2)];
    await Promise.all(commits);
    expect(payloads(IngestJournal.uncommitted(dir))).toEqual(['5']);
  });

  it('ignores a torn frame at the end of a segment (a crash in the middle of a write)', () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir);
    journal.append('t', Buffer.from('whole'));
    journal.write();
    const [segment] = readdirSync(dir).filter((name) => name.startsWith('segment-'));
    appendFileSync(join(dir, segment!), Buffer.from([5, 0, 0, 0, 9, 0]));
    expect(payloads(IngestJournal.uncommitted(dir))).toEqual(['whole']);
  });

  it('starts new segments and deletes the ones whose records are all committed', async () => {
    const dir = fresh();
    const journal = IngestJournal.open(dir, 64);
    for (let i = 1; i <= 20; i++) {
      journal.append('pf/v1/dev/x/state', Buffer.from(`record-${i}`));
      journal.write();
    }
    const segments = () => readdirSync(dir).filter((name) => name.startsWith('segment-')).length;
    const before = segments();
    expect(before).toBeGreaterThan(3);
    await journal.commit(15);
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
    journal.write();
    expect(IngestJournal.uncommitted(dir)[0]!.payload.equals(bytes)).toBe(true);
  });
});
