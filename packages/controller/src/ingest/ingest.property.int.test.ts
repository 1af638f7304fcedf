import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '@podfleet/shared';
import type { SqlSession } from '../db/session.js';
import { openScratchPool, type ScratchPool } from '../db/testing.js';
import { DeviceIngest } from './device-ingest.js';

const log = pino({ level: 'silent' });

/** Good text: any Unicode a container may print, but NUL and lone surrogates (agents clip those). */
const text = fc
  .string({ unit: 'grapheme', maxLength: 120 })
  .map((value) => value.replaceAll('\u0000', ''));

const validState = (device: string) => ({
  device,
  generation: 1,
  reportedAt: new Date().toISOString(),
  agent: { version: '0.1.0' },
  host: { podman: '5.4.2', systemd: '257', arch: 'x86_64', unitStyle: 'quadlet' },
  services: [
    {
      name: 'web',
      image: 'registry.example/web:1',
      unit: { active: 'active', sub: 'running', restarts: 0 },
      ready: true,
    },
  ],
});

const validEvent = (device: string) => ({
  id: randomUUID(),
  device,
  at: new Date().toISOString(),
  type: 'error',
  message: 'ok',
});

const extreme = fc.oneof(
  fc.constantFrom(2 ** 31, 2 ** 53, -1, 1e308, Number.NaN, 0.5, '1', null, true, [], {}),
  fc.double(),
  fc.integer(),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.constantFrom('0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '2099-01-01T00:00:00Z'),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ minLength: 300, maxLength: 5000 }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** What one hostile device sends: on its own topics (the broker's ACL sees to that), anything. */
const hostileMessage = (device: string) =>
  fc.oneof(
    fc
      .record({
        kind: fc.constantFrom('state', 'events', 'online'),
        bytes: fc.uint8Array({ maxLength: 2048 }),
      })
      .map(({ kind, bytes }) => ({ kind, payload: Buffer.from(bytes) })),
    fc
      .record({ kind: fc.constantFrom('state', 'events'), value: fc.jsonValue() })
      .map(({ kind, value }) => ({ kind, payload: Buffer.from(JSON.stringify(value) ?? 'null') })),
    fc
      .record({
        key: fc.constantFrom('generation', 'reportedAt', 'agent', 'host', 'services', 'device'),
        value: extreme,
      })
      .map(({ key, value }) => ({
        kind: 'state',
        payload: Buffer.from(JSON.stringify({ ...validState(device), [key]: value })),
      })),
    fc
      .record({ key: fc.constantFrom('at', 'message', 'type', 'id', 'service'), value: extreme })
      .map(({ key, value }) => ({
        kind: 'events',
        payload: Buffer.from(JSON.stringify({ ...validEvent(device), [key]: value })),
      })),
    // Valid by every bound, refused by the database (the trigger below): isolated, not blocking.
    fc.constant(null).map(() => ({
      kind: 'events',
      payload: Buffer.from(JSON.stringify({ ...validEvent(device), message: 'poison' })),
    })),
  );

describe('ingest under random hostile traffic (fast-check, Postgres)', () => {
  let scratch: ScratchPool;
  let pool: pg.Pool;
  const withSession = <T>(work: (session: SqlSession) => Promise<T>) => scratch.withSession(work);

  beforeAll(async () => {
    scratch = await openScratchPool();
    pool = scratch.pool;
    await pool.query(`
      CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
      BEGIN
        IF NEW.payload->>'message' = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF;
        RETURN NEW;
      END $$ LANGUAGE plpgsql;
      CREATE TRIGGER refuse_poison BEFORE INSERT ON device_events
        FOR EACH ROW EXECUTE FUNCTION refuse_poison();`);
  });
  afterAll(async () => {
    await scratch.close();
  });

  it('stores every good message exactly once, never stops storing, and restarts cleanly on the same data directory', async () => {
    let runs = 0;
    let hostileSent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            { weight: 1, arbitrary: text.map((message) => ({ good: true as const, message })) },
            {
              weight: 1,
              arbitrary: hostileMessage('hostile').map((m) => ({ good: false as const, ...m })),
            },
          ),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 1, max: 40 }),
        async (traffic, maxBatch) => {
          const run = randomUUID().slice(0, 8);
          const good = [`good-a-${run}`, `good-b-${run}`];
          const hostile = `hostile-${run}`;
          await pool.query('INSERT INTO devices (id) SELECT unnest($1::text[])', [
            [...good, hostile],
          ]);
          const dir = mkdtempSync(join(tmpdir(), 'pf-ingest-prop-'));
          let ingest = new DeviceIngest({
            journalDir: dir,
            withSession,
            log,
            maxBatch,
            maxDelayMs: 1,
          });
          await ingest.replay();
          const ids: string[] = [];
          traffic.forEach((message, i) => {
            if (message.good) {
              const device = good[i % 2]!;
              const event = { ...validEvent(device), message: message.message };
              ids.push(event.id);
              ingest.receive(topics.events(device), Buffer.from(JSON.stringify(event)));
              return;
            }
            hostileSent++;
            const payload = Buffer.from(
              message.payload.toString('latin1').replaceAll('"hostile"', `"${hostile}"`),
              'latin1',
            );
            const topic =
              message.kind === 'state'
                ? topics.state(hostile)
                : message.kind === 'events'
                  ? topics.events(hostile)
                  : topics.online(hostile);
            ingest.receive(topic, payload);
          });
          // The last word is a good device's: it must be stored after all of that.
          const last = { ...validState(good[0]!), generation: 9 };
          ingest.receive(topics.state(good[0]!), Buffer.from(JSON.stringify(last)));
          await ingest.drain();
          await ingest.close();

          const stored = await pool.query<{ id: string }>(
            'SELECT id FROM device_events WHERE device_id = ANY($1::text[])',
            [good],
          );
          expect(stored.rows.map((row) => row.id).sort()).toEqual([...ids].sort());
          const generation = await pool.query<{ applied_generation: number }>(
            'SELECT applied_generation FROM devices WHERE id = $1',
            [good[0]],
          );
          expect(generation.rows[0]!.applied_generation).toBe(9);

          // A new controller on the same directory: nothing left to replay, nothing doubled.
          ingest = new DeviceIngest({ journalDir: dir, withSession, log });
          expect(await ingest.replay()).toBe(0);
          await ingest.close();
          runs++;
        },
      ),
      { numRuns: 100 },
    );
    console.log(`ingest property: ${runs} runs, ${hostileSent} hostile messages among good ones`);
  });
});
