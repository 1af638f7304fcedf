import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics, type DeviceEventInput, type StateReport } from '@podfleet/shared';
import type { SqlSession } from '../db/session.js';
import { openScratchPool, type ScratchPool } from '../db/testing.js';
import { DeviceIngest } from './device-ingest.js';
import { IngestJournal } from './journal.js';

const log = pino({ level: process.env.PODFLEET_TEST_LOG ?? 'silent' });

/** One hostile message each, as a device (its own broker account, its own topics) could send. */
export const HOSTILE: { name: string; kind: 'state' | 'events' | 'online'; body: (device: string) => string | Buffer; field: RegExp }[] = [
  { name: 'generation beyond integer', kind: 'state', body: (d) => json(state(d, { generation: 3_000_000_000 })), field: /generation/ },
  { name: 'reportedAt in year 0', kind: 'state', body: (d) => json(state(d, { reportedAt: '0000-01-01T00:00:00Z' })), field: /reportedAt/ },
  { name: 'event at year 0', kind: 'events', body: (d) => json({ ...errorEvent(d), at: '0000-01-01T00:00:00Z' }), field: /at:/ },
  { name: 'apply generation beyond integer', kind: 'events', body: (d) => json({ ...errorEvent(d), type: 'apply', message: undefined, result: 'applied', generation: 2 ** 40 }), field: /generation/ },
  { name: 'restarts beyond integer', kind: 'state', body: (d) => json(state(d, { services: [service({ restarts: 1e12 })] })), field: /services\[0\]\.unit\.restarts/ },
  { name: 'negative restarts', kind: 'state', body: (d) => json(state(d, { services: [service({ restarts: -1 })] })), field: /restarts/ },
  { name: '10 MB agent.version', kind: 'state', body: (d) => json(state(d, { agent: { version: 'x'.repeat(10 * 1024 * 1024) } })), field: /bytes, at most/ },
  { name: '1 KB agent.version', kind: 'state', body: (d) => json(state(d, { agent: { version: 'x'.repeat(1024) } })), field: /agent\.version/ },
  { name: '40 KB event message', kind: 'events', body: (d) => json({ ...errorEvent(d), message: 'y'.repeat(40 * 1024) }), field: /bytes, at most/ },
  { name: '5 KB event message', kind: 'events', body: (d) => json({ ...errorEvent(d), message: 'y'.repeat(5000) }), field: /message/ },
  { name: 'NUL in a message', kind: 'events', body: (d) => json({ ...errorEvent(d), message: 'a\u0000b' }), field: /message: NUL/ },
  { name: 'lone surrogate', kind: 'events', body: (d) => json({ ...errorEvent(d), message: 'a\ud800b' }), field: /message: invalid Unicode/ },
  { name: '300 services', kind: 'state', body: (d) => json(state(d, { services: Array.from({ length: 300 }, () => service({})) })), field: /services/ },
  { name: '60 journal lines', kind: 'events', body: (d) => json({ ...errorEvent(d), type: 'rollback', message: undefined, service: 'web', generation: 1, trigger: 'apply', fromImage: 'a', toImage: 'b', reason: 'r', restored: true, failure: { reason: 'unhealthy', journal: Array.from({ length: 60 }, () => 'line') } }), field: /failure\.journal/ },
  { name: 'not JSON', kind: 'state', body: () => Buffer.from([0xff, 0xfe, 0x00, 0x7b]), field: /not JSON/ },
  { name: 'deeply nested JSON', kind: 'events', body: () => '['.repeat(16_000) + ']'.repeat(16_000), field: /(root)|not JSON/ },
  { name: 'a JSON number', kind: 'state', body: () => '42', field: /\(root\)/ },
  { name: 'another device named inside', kind: 'state', body: () => json(state('someone-else', {})), field: /payload names device someone-else/ },
  { name: 'unknown event type', kind: 'events', body: (d) => json({ ...errorEvent(d), type: 'format-disk' }), field: /type/ },
  { name: 'unknown field', kind: 'state', body: (d) => json({ ...state(d, {}), admin: true }), field: /Unrecognized key/ },
  { name: 'online neither online nor offline', kind: 'online', body: () => 'maybe', field: /online/ },
  { name: 'online of 100 bytes', kind: 'online', body: () => 'o'.repeat(100), field: /at most 64/ },
  { name: 'prototype pollution keys', kind: 'state', body: (d) => `{"__proto__":{"admin":true},${json(state(d, {})).slice(1)}`, field: /Unrecognized key/ },
]; // prettier-ignore

function json(value: unknown): string {
  return JSON.stringify(value);
}

function state(device: string, patch: Partial<Record<keyof StateReport, unknown>>) {
  return {
    device,
    generation: 1,
    reportedAt: new Date().toISOString(),
    agent: { version: '0.1.0' },
    host: { podman: '5.4.2', systemd: '257', arch: 'x86_64', unitStyle: 'quadlet' },
    services: [],
    ...patch,
  };
}

function service(unit: Record<string, unknown>) {
  return {
    name: 'web',
    image: 'registry.example/web:1',
    unit: { active: 'active', sub: 'running', restarts: 0, ...unit },
    ready: true,
  };
}

function errorEvent(device: string): DeviceEventInput & Record<string, unknown> {
  return { id: randomUUID(), device, at: new Date().toISOString(), type: 'error', message: 'ok' };
}

describe('ingest of hostile device messages (Postgres)', () => {
  let scratch: ScratchPool;
  let pool: pg.Pool;
  const withSession = <T>(work: (session: SqlSession) => Promise<T>) => scratch.withSession(work);
  const count = (sql: string, params: unknown[] = []) => scratch.count(sql, params);

  beforeAll(async () => {
    scratch = await openScratchPool();
    pool = scratch.pool;
  });
  afterAll(async () => {
    await scratch.close();
  });

  async function addDevices(ids: string[]): Promise<void> {
    await pool.query('INSERT INTO devices (id, updated_at) SELECT unnest($1::text[]), now()', [
      ids,
    ]);
  }

  async function openIngest(journalDir: string) {
    const ingest = new DeviceIngest({ journalDir, withSession, log, maxDelayMs: 5 });
    await ingest.replay();
    return ingest;
  }

  it('stores every good message while devices send each hostile input, and quarantines each with the field it broke', async () => {
    const run = randomUUID().slice(0, 8);
    const good = `good-${run}`;
    const bad = HOSTILE.map((_, i) => `bad-${run}-${i}`);
    await addDevices([good, ...bad]);
    const dir = mkdtempSync(join(tmpdir(), 'pf-hostile-'));
    const ingest = await openIngest(dir);
    const goodIds: string[] = [];
    HOSTILE.forEach((hostile, i) => {
      const device = bad[i]!;
      const topic =
        hostile.kind === 'state'
          ? topics.state(device)
          : hostile.kind === 'events'
            ? topics.events(device)
            : topics.online(device);
      const body = hostile.body(device);
      ingest.receive(topic, Buffer.isBuffer(body) ? body : Buffer.from(body));
      // 20 events of a good device between any two hostile ones, in the same batches.
      for (let n = 0; n < 20; n++) {
        const event = errorEvent(good);
        goodIds.push(event.id);
        ingest.receive(topics.events(good), Buffer.from(json(event)));
      }
    });
    ingest.receive(topics.state(good), Buffer.from(json(state(good, { generation: 7 }))));
    await ingest.drain();

    expect(
      await count('SELECT count(*) AS n FROM device_events WHERE id = ANY($1::uuid[])', [goodIds]),
    ).toBe(goodIds.length);
    expect(await count('SELECT applied_generation AS n FROM devices WHERE id = $1', [good])).toBe(
      7,
    );
    // Nothing of a hostile message reached the devices' rows.
    expect(
      await count(
        'SELECT count(*) AS n FROM devices WHERE id = ANY($1::text[]) AND (last_state IS NOT NULL OR applied_generation <> 0)',
        [bad],
      ),
    ).toBe(0);
    const quarantined = await pool.query<{ device_id: string; reason: string; excerpt: string }>(
      'SELECT device_id, reason, excerpt FROM quarantined_messages WHERE device_id = ANY($1::text[])',
      [bad],
    );
    const reasons = new Map(quarantined.rows.map((row) => [row.device_id, row.reason]));
    const outcome = HOSTILE.map(
      (hostile, i) => `${hostile.name} → ${reasons.get(bad[i]!) ?? 'STORED'}`,
    );
    console.log(`hostile inputs tried: ${HOSTILE.length}\n  ${outcome.join('\n  ')}`);
    HOSTILE.forEach((hostile, i) =>
      expect(reasons.get(bad[i]!), hostile.name).toMatch(hostile.field),
    );
    for (const row of quarantined.rows) expect(row.excerpt.length).toBeLessThanOrEqual(4096);
    expect(ingest.stats.invalid).toBe(HOSTILE.length);
    await ingest.close();
  });

  it('mutes a device refused 100 times in a minute: its later messages go unread, others are stored', async () => {
    const run = randomUUID().slice(0, 8);
    const flooder = `flood-${run}`;
    const good = `calm-${run}`;
    await addDevices([flooder, good]);
    const ingest = await openIngest(mkdtempSync(join(tmpdir(), 'pf-hostile-')));
    for (let n = 0; n < 150; n++) ingest.receive(topics.state(flooder), Buffer.from(`junk ${n}`));
    // Valid, but from the muted device within its minute: dropped unread.
    ingest.receive(topics.events(flooder), Buffer.from(json(errorEvent(flooder))));
    const calm = errorEvent(good);
    ingest.receive(topics.events(good), Buffer.from(json(calm)));
    await ingest.drain();
    expect(ingest.stats.invalid).toBe(151);
    expect(ingest.stats.muted).toBe(51);
    expect(
      await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [flooder]),
    ).toBe(0);
    expect(await count('SELECT count(*) AS n FROM device_events WHERE id = $1', [calm.id])).toBe(1);
    // Six a minute reach the quarantine; the rest are counted.
    expect(
      await count('SELECT count(*) AS n FROM quarantined_messages WHERE device_id = $1', [flooder]),
    ).toBe(6);
    await ingest.close();
  });

  it('quarantines the one message the database refuses and stores the rest of its batch', async () => {
    const run = randomUUID().slice(0, 8);
    const device = `db-${run}`;
    await addDevices([device]);
    // Something the schemas allow and the database still refuses (a constraint, a trigger, a
    // type the bounds missed): here a trigger stands for it.
    await pool.query(`
      CREATE OR REPLACE FUNCTION refuse_poison() RETURNS trigger AS $$
      BEGIN
        IF NEW.payload->>'message' = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql;
      CREATE TRIGGER refuse_poison BEFORE INSERT ON device_events
        FOR EACH ROW EXECUTE FUNCTION refuse_poison();`);
    try {
      const dir = mkdtempSync(join(tmpdir(), 'pf-hostile-'));
      const ingest = await openIngest(dir);
      const ids: string[] = [];
      for (let n = 0; n < 101; n++) {
        const event = { ...errorEvent(device), message: n === 50 ? 'poison' : `ok ${n}` };
        if (n !== 50) ids.push(event.id);
        ingest.receive(topics.events(device), Buffer.from(json(event)));
      }
      await ingest.drain();
      expect(
        await count('SELECT count(*) AS n FROM device_events WHERE id = ANY($1::uuid[])', [ids]),
      ).toBe(100);
      const rows = await pool.query<{ reason: string }>(
        'SELECT reason FROM quarantined_messages WHERE device_id = $1',
        [device],
      );
      expect(rows.rows.map((row) => row.reason)).toEqual(['database refused it: poison refused']);
      expect(ingest.stats.quarantined).toBe(1);
      await ingest.close();
      // Journal committed past it: a restart on the same directory replays nothing.
      const again = new DeviceIngest({ journalDir: dir, withSession, log });
      expect(await again.replay()).toBe(0);
      await again.close();
    } finally {
      await pool.query('DROP TRIGGER refuse_poison ON device_events');
    }
  });

  it('replays a journal holding messages an older controller accepted without stopping, and starts cleanly again', async () => {
    const run = randomUUID().slice(0, 8);
    const good = `replay-good-${run}`;
    const bad = `replay-bad-${run}`;
    await addDevices([good, bad]);
    const dir = mkdtempSync(join(tmpdir(), 'pf-hostile-'));
    // What a controller without the bounds journaled: each of these stopped every later start
    // (`value "3000000000" is out of range for type integer`).
    const journal = IngestJournal.open(dir);
    const ids: string[] = [];
    const poisons = [
      json(state(bad, { generation: 3_000_000_000 })),
      json({ ...errorEvent(bad), at: '0000-01-01T00:00:00Z' }),
      json(state(bad, { reportedAt: '0000-01-01T00:00:00Z' })),
    ];
    for (const poison of poisons) {
      journal.append(
        poison.includes('"type"') ? topics.events(bad) : topics.state(bad),
        Buffer.from(poison),
      );
      for (let n = 0; n < 5; n++) {
        const event = errorEvent(good);
        ids.push(event.id);
        journal.append(topics.events(good), Buffer.from(json(event)));
      }
    }
    await journal.close();

    const ingest = new DeviceIngest({ journalDir: dir, withSession, log });
    expect(await ingest.replay()).toBe(poisons.length + ids.length);
    await ingest.close();
    expect(
      await count('SELECT count(*) AS n FROM device_events WHERE id = ANY($1::uuid[])', [ids]),
    ).toBe(ids.length);
    expect(
      await count('SELECT count(*) AS n FROM quarantined_messages WHERE device_id = $1', [bad]),
    ).toBe(poisons.length);
    const again = new DeviceIngest({ journalDir: dir, withSession, log });
    expect(await again.replay()).toBe(0);
    await again.close();
  });

  it('does not freeze a device whose clock jumped ahead and back: the controller’s receive time orders its reports and dates lastSeen', async () => {
    const device = `clock-${randomUUID().slice(0, 8)}`;
    await addDevices([device]);
    const ingest = await openIngest(mkdtempSync(join(tmpdir(), 'pf-hostile-')));
    const send = async (generation: number, reportedAt: string) => {
      ingest.receive(
        topics.state(device),
        Buffer.from(json(state(device, { generation, reportedAt }))),
      );
      await ingest.drain();
    };
    const before = Date.now();
    await send(1, '2099-01-01T00:00:00.000Z');
    await send(2, '2026-01-01T00:00:00.000Z');
    await send(3, '1970-01-01T00:00:01.000Z');
    const row = await pool.query<{
      applied_generation: number;
      last_seen: Date;
      last_state: StateReport;
    }>('SELECT applied_generation, last_seen, last_state FROM devices WHERE id = $1', [device]);
    const stored = row.rows[0]!;
    expect(stored.applied_generation).toBe(3);
    expect(stored.last_seen.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(stored.last_seen.getTime()).toBeLessThanOrEqual(Date.now());
    // The device's own time is kept as it said it.
    expect(stored.last_state.reportedAt).toBe('1970-01-01T00:00:01.000Z');
    await ingest.close();
  });
});
