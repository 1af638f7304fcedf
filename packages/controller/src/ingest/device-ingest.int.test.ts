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
import { connectBroker, controllerSessionOptions, type BrokerSession } from '../mqtt/connect.js';
import { DeviceIngest } from './device-ingest.js';
import { startMosquitto } from '../mqtt/testing.js';

const MOSQUITTO = process.env.PODFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const log = pino({ level: process.env.PODFLEET_TEST_LOG ?? 'silent' });

describe('device ingest against Postgres and Mosquitto', () => {
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

  async function addDevices(prefix: string, n: number): Promise<string[]> {
    const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    await pool.query('INSERT INTO devices (id, updated_at) SELECT unnest($1::text[]), now()', [
      ids,
    ]);
    return ids;
  }

  function state(device: string, generation: number, at = new Date()): StateReport {
    return {
      device,
      generation,
      reportedAt: at.toISOString(),
      agent: { version: '0.1.0' },
      host: { podman: '5.4.2', systemd: '257', arch: 'x86_64', unitStyle: 'quadlet' },
      services: [],
    };
  }

  function event(device: string): DeviceEventInput {
    return {
      id: randomUUID(),
      device,
      at: new Date().toISOString(),
      type: 'error',
      message: 'disk full',
    };
  }

  async function ingestOn(
    clientId: string,
    journalDir: string,
    extra: Partial<ConstructorParameters<typeof DeviceIngest>[0]> = {},
    broker: { url: string; username?: string; password?: string } = { url: MOSQUITTO },
  ) {
    const options = controllerSessionOptions(clientId);
    const { url, ...credentials } = broker;
    // A share group of its own: other controllers on this broker (other tests, stale sessions of
    // earlier runs) would otherwise take their turn at this test's messages.
    const shareGroup = `test-${clientId}`;
    const ingest = new DeviceIngest({ journalDir, withSession, log, shareGroup, ...extra });
    // Listening before CONNACK, as serve does: a resumed session delivers its queue at once.
    const session = await connectBroker(
      url,
      {
        ...options,
        ...credentials,
        properties: { ...options.properties, sessionExpiryInterval: 30 },
      },
      (client) => ingest.listen(client),
    );
    await ingest.replay();
    await ingest.subscribe(session.client, session.sharedSubscriptions);
    return { session, ingest };
  }

  async function until(check: () => Promise<boolean>, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function publisher(): Promise<BrokerSession> {
    return connectBroker(MOSQUITTO, { clientId: `pf-test-pub-${randomUUID()}` });
  }

  it('stores a burst of 10,000 state reports, none lost, with each device’s applied generation', async () => {
    const prefix = `burst-${randomUUID().slice(0, 6)}`;
    const ids = await addDevices(prefix, 10_000);
    const { session, ingest } = await ingestOn(
      `pf-ctl-${randomUUID()}`,
      mkdtempSync(join(tmpdir(), 'pf-ingest-')),
    );
    const pub = await publisher();
    try {
      await Promise.all(
        ids.map((id) =>
          pub.client.publishAsync(topics.state(id), JSON.stringify(state(id, 7)), { qos: 1 }),
        ),
      );
      await until(
        async () =>
          (await count(
            `SELECT count(*) AS n FROM devices WHERE id LIKE $1 AND applied_generation = 7`,
            [`${prefix}-%`],
          )) === 10_000,
      );
      expect(
        await count(
          `SELECT count(*) AS n FROM devices WHERE id LIKE $1 AND online AND last_state IS NOT NULL`,
          [`${prefix}-%`],
        ),
      ).toBe(10_000);
    } finally {
      await ingest.close();
      await Promise.all([session.client.endAsync(), pub.client.endAsync()]);
    }
  });

  it('drops malformed and forged payloads, counts them, and keeps going', async () => {
    const [device] = await addDevices(`bad-${randomUUID().slice(0, 6)}`, 1);
    const { session, ingest } = await ingestOn(
      `pf-ctl-${randomUUID()}`,
      mkdtempSync(join(tmpdir(), 'pf-ingest-')),
    );
    const pub = await publisher();
    try {
      await pub.client.publishAsync(topics.events(device!), 'not json', { qos: 1 });
      await pub.client.publishAsync(
        topics.events(device!),
        JSON.stringify({ type: 'apply', device }),
        { qos: 1 },
      );
      await pub.client.publishAsync(topics.events(device!), JSON.stringify(event('someone-else')), {
        qos: 1,
      });
      await pub.client.publishAsync(topics.online(device!), 'maybe', { qos: 1 });
      const good = event(device!);
      await pub.client.publishAsync(topics.events(device!), JSON.stringify(good), { qos: 1 });
      await until(
        async () =>
          (await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [
            device,
          ])) === 1,
      );
      await ingest.drain();
      expect(ingest.stats.invalid).toBe(4);
      const stored = await pool.query(
        'SELECT id, type, payload FROM device_events WHERE device_id = $1',
        [device],
      );
      expect(stored.rows).toEqual([{ id: good.id, type: 'error', payload: good }]);
    } finally {
      await ingest.close();
      await Promise.all([session.client.endAsync(), pub.client.endAsync()]);
    }
  });

  it('loses nothing the broker acknowledged when the controller dies mid-ingest and a new one starts', async () => {
    const [device] = await addDevices(`crash-${randomUUID().slice(0, 6)}`, 1);
    const clientId = `pf-ctl-${randomUUID()}`;
    const journalDir = mkdtempSync(join(tmpdir(), 'pf-ingest-'));
    // The database is slow, so the first controller dies with batches acknowledged but unwritten.
    const slow = async <T>(work: (session: SqlSession) => Promise<T>) => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return withSession(work);
    };
    // A broker of its own, configured as deployed (deploy/mosquitto: a queue that holds what
    // waits for the controller while it is away; the machine's default of 1000 would drop some).
    const broker = await startMosquitto({
      'podfleet-controller': 'ctl-secret',
      [device!]: 'dev-secret',
    });
    const asController = {
      url: broker.url,
      username: 'podfleet-controller',
      password: 'ctl-secret',
    };
    const first = await ingestOn(
      clientId,
      journalDir,
      { withSession: slow, maxBatch: 100 },
      asController,
    );
    const pub = await connectBroker(broker.url, {
      username: device!,
      password: 'dev-secret',
      clientId: device!,
    });
    const sent = Array.from({ length: 2000 }, () => event(device!));
    await Promise.all(
      sent.map((e) =>
        pub.client.publishAsync(topics.events(device!), JSON.stringify(e), { qos: 1 }),
      ),
    );
    await until(async () => first.ingest.stats.received >= 500);
    first.session.client.end(true); // the process dies: no drain, no clean disconnect
    const before = await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [
      device,
    ]);
    expect(before).toBeLessThan(2000);

    const second = await ingestOn(clientId, journalDir, {}, asController);
    try {
      await until(
        async () =>
          (await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [
            device,
          ])) === 2000,
      );
      await second.ingest.drain();
      const ids = (
        await pool.query<{ id: string }>('SELECT id FROM device_events WHERE device_id = $1', [
          device,
        ])
      ).rows.map((r) => r.id);
      expect(new Set(ids)).toEqual(new Set(sent.map((e) => e.id)));
    } finally {
      await second.ingest.close();
      await Promise.all([second.session.client.endAsync(), pub.client.endAsync()]);
      await broker.stop();
    }
  });

  it('reads no further from the broker while batches wait for a slow database, and on once they are stored', async () => {
    const [device] = await addDevices(`slow-${randomUUID().slice(0, 6)}`, 1);
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const stalled = async <T>(work: (session: SqlSession) => Promise<T>) => {
      await opened;
      return withSession(work);
    };
    const { session, ingest } = await ingestOn(
      `pf-ctl-${randomUUID()}`,
      mkdtempSync(join(tmpdir(), 'pf-ingest-')),
      { withSession: stalled, maxBatch: 100 },
    );
    const pub = await publisher();
    try {
      const sent = Array.from({ length: 2000 }, () => event(device!));
      await Promise.all(
        sent.map((e) =>
          pub.client.publishAsync(topics.events(device!), JSON.stringify(e), { qos: 1 }),
        ),
      );
      // Until nothing more arrives: one batch at the database, two waiting (2 × maxBatch).
      let seen = -1;
      while (ingest.stats.received !== seen) {
        seen = ingest.stats.received;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      expect(ingest.stats.received).toBeLessThanOrEqual(3 * 100 + 1);
      open();
      await until(
        async () =>
          (await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [
            device,
          ])) === 2000,
      );
    } finally {
      open();
      await ingest.close();
      await Promise.all([session.client.endAsync(), pub.client.endAsync()]);
    }
  });

  it('keeps acknowledging while the database is down and catches up from the journal when it answers', async () => {
    const [device] = await addDevices(`down-${randomUUID().slice(0, 6)}`, 1);
    let down = true;
    const flaky = async <T>(work: (session: SqlSession) => Promise<T>) => {
      if (down) throw new Error('connection refused');
      return withSession(work);
    };
    const { session, ingest } = await ingestOn(
      `pf-ctl-${randomUUID()}`,
      mkdtempSync(join(tmpdir(), 'pf-ingest-')),
      {
        withSession: flaky,
        retryMs: 50,
      },
    );
    let delivered = 0;
    session.client.on('message', (topic) => void (topic === topics.events(device!) && delivered++));
    const pub = await publisher();
    try {
      const sent = Array.from({ length: 300 }, () => event(device!));
      await Promise.all(
        sent.map((e) =>
          pub.client.publishAsync(topics.events(device!), JSON.stringify(e), { qos: 1 }),
        ),
      );
      // Counted for this device only: other devices' retained messages arrive on subscribe too.
      await until(async () => delivered === 300);
      expect(
        await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [device]),
      ).toBe(0);
      down = false;
      await until(
        async () =>
          (await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [
            device,
          ])) === 300,
      );
      const more = event(device!);
      await pub.client.publishAsync(topics.events(device!), JSON.stringify(more), { qos: 1 });
      await until(
        async () =>
          (await count('SELECT count(*) AS n FROM device_events WHERE device_id = $1', [
            device,
          ])) === 301,
      );
    } finally {
      await ingest.close();
      await Promise.all([session.client.endAsync(), pub.client.endAsync()]);
    }
  });
});
