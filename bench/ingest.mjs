/* global URL, setTimeout */
// Sustained device events per second into Postgres, three ways, in one run:
//   1. the limit: the same rows by one `INSERT … SELECT unnest(…)` per batch, pg directly;
//   2. storeBatch (the controller's DB-side ingest: one transaction, join with devices, ON CONFLICT,
//      known-device check) on the same batches;
//   3. the whole path: DeviceIngest subscribed on real Mosquitto, fed by publisher processes
//      (QoS 1 events), from first publish until every event is in Postgres.
// Run: npm run bench -- ingest   (needs Postgres on 127.0.0.1:5432 and Mosquitto on :1883)
// BENCH_EVENTS (default 100,000), BENCH_BATCH (2,000), BENCH_PUBLISHERS (3), BENCH_DEVICES (2,000).
import { randomUUID } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { pino } from 'pino';

const MQTT = process.env.BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

if (process.argv[2] === '--publisher') {
  // Child: publishes its share of events, QoS 1, and reports the time it took.
  const [, , , prefix, devices, from, count] = process.argv;
  const client = await mqtt.connectAsync(MQTT, { clientId: `pf-bench-pub-${randomUUID()}` });
  process.send({ ready: true });
  await new Promise((resolve) => process.once('message', resolve));
  const start = performance.now();
  const inflight = [];
  for (let i = Number(from); i < Number(from) + Number(count); i++) {
    const device = `${prefix}-${i % Number(devices)}`;
    const event = {
      id: randomUUID(),
      device,
      at: new Date().toISOString(),
      type: 'error',
      message: 'disk full',
    };
    inflight.push(
      client.publishAsync(`pf/v1/dev/${device}/events`, JSON.stringify(event), { qos: 1 }),
    );
    if (inflight.length >= 1000) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  process.send({ done: (performance.now() - start) / 1000 });
  await client.endAsync();
  process.exit(0);
}

const { createScratchDatabase } = await import('../packages/controller/dist/db/testing.js');
const { migrateDatabase } = await import('../packages/controller/dist/db/migrate.js');
const { pgSession } = await import('../packages/controller/dist/db/session.js');
const { storeBatch } = await import('../packages/controller/dist/ingest/store.js');
const { DeviceIngest } = await import('../packages/controller/dist/ingest/device-ingest.js');
const { connectBroker, controllerSessionOptions } =
  await import('../packages/controller/dist/mqtt/connect.js');

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 2000);
const PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? 3);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 2000);

const scratch = await createScratchDatabase();
await migrateDatabase(scratch.url);
const pool = new pg.Pool({ connectionString: scratch.url, max: 4 });
const withSession = async (work) => {
  const client = await pool.connect();
  try {
    return await work(pgSession(client));
  } finally {
    client.release();
  }
};
const count = async () =>
  Number((await pool.query('SELECT count(*) AS n FROM device_events')).rows[0].n);

const results = [];
const report = (label, events, seconds) => {
  const rate = events / seconds;
  results.push({ label, rate });
  console.log(
    `${label.padEnd(58)} ${String(events).padStart(7)} events ${seconds.toFixed(2).padStart(6)} s ${Math.round(rate).toLocaleString('en').padStart(8)} events/s`,
  );
};

try {
  const prefix = `bench-${randomUUID().slice(0, 6)}`;
  await pool.query('INSERT INTO devices (id, updated_at) SELECT unnest($1::text[]), now()', [
    Array.from({ length: DEVICES }, (_, i) => `${prefix}-${i}`),
  ]);
  console.log(
    `podfleet ingest benchmark: ${EVENTS} events, batches of ${BATCH}, ${DEVICES} devices; ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${new Date().toISOString()}`,
  );

  const makeBatches = () => {
    const batches = [];
    for (let start = 0; start < EVENTS; start += BATCH) {
      const events = [];
      for (let i = start; i < Math.min(EVENTS, start + BATCH); i++) {
        events.push({
          id: randomUUID(),
          device: `${prefix}-${i % DEVICES}`,
          at: new Date().toISOString(),
          type: 'error',
          message: 'disk full',
        });
      }
      batches.push(events);
    }
    return batches;
  };

  // 1. The limit: one INSERT … SELECT unnest(…) per batch, one connection, batches one after the other.
  {
    const batches = makeBatches();
    const client = await pool.connect();
    const start = performance.now();
    for (const events of batches) {
      await client.query(
        `INSERT INTO device_events (id, device_id, type, at, payload)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[])`,
        [
          events.map((e) => e.id),
          events.map((e) => e.device),
          events.map((e) => e.type),
          events.map((e) => e.at),
          events.map((e) => JSON.stringify(e)),
        ],
      );
    }
    report(
      'limit: INSERT … SELECT unnest(…) per batch',
      EVENTS,
      (performance.now() - start) / 1000,
    );
    client.release();
  }
  await pool.query('TRUNCATE device_events');

  // 2. storeBatch, the DB side of the controller's ingest, on the same kind of batches.
  {
    const batches = makeBatches();
    const start = performance.now();
    let stored = 0;
    for (const events of batches) {
      const counts = await withSession((session) =>
        storeBatch(session, { states: [], events, online: [] }),
      );
      stored += counts.events;
    }
    const seconds = (performance.now() - start) / 1000;
    if (stored !== EVENTS) console.log(`!! storeBatch stored ${stored} of ${EVENTS}`);
    report('storeBatch (controller DB side), batches in sequence', EVENTS, seconds);
  }
  await pool.query('TRUNCATE device_events');

  // 3. The whole path: publishers → Mosquitto → DeviceIngest (journal, batcher) → Postgres.
  {
    const journalDir = mkdtempSync(join(tmpdir(), 'pf-bench-ingest-'));
    const clientId = `pf-bench-ctl-${randomUUID()}`;
    const options = controllerSessionOptions(clientId);
    const session = await connectBroker(MQTT, {
      ...options,
      properties: { ...options.properties, sessionExpiryInterval: 0 },
    });
    const ingest = new DeviceIngest({
      journalDir,
      withSession,
      // Retained state/online messages of other runs on a shared broker are dropped as invalid.
      log: pino({ level: 'error' }),
      shareGroup: `bench-${clientId}`,
    });
    await ingest.subscribe(session.client, session.sharedSubscriptions);
    const share = Math.ceil(EVENTS / PUBLISHERS);
    const children = [];
    for (let p = 0; p < PUBLISHERS; p++) {
      const n = Math.min(share, EVENTS - p * share);
      const child = fork(new URL(import.meta.url).pathname, [
        '--publisher',
        prefix,
        String(DEVICES),
        String(p * share),
        String(n),
      ]);
      const ready = new Promise((resolve) => child.once('message', resolve));
      children.push({ child, ready });
    }
    await Promise.all(children.map((c) => c.ready));
    const done = children.map(
      ({ child }) =>
        new Promise((resolve) => child.on('message', (m) => m.done && resolve(m.done))),
    );
    const start = performance.now();
    for (const { child } of children) child.send({ go: true });
    const publishSeconds = Math.max(...(await Promise.all(done)));
    // Until every event is stored, or nothing new for 3 s (the broker may have dropped some).
    let last = ingest.stats.stored.events;
    let lastAt = performance.now();
    while (ingest.stats.stored.events < EVENTS && performance.now() - lastAt < 3000) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (ingest.stats.stored.events !== last) {
        last = ingest.stats.stored.events;
        lastAt = performance.now();
      }
    }
    const seconds = (lastAt - start) / 1000;
    const inDb = await count();
    console.log(
      `  (publishers done after ${publishSeconds.toFixed(2)} s; received ${ingest.stats.received}, stored ${ingest.stats.stored.events}, rows ${inDb})`,
    );
    if (inDb < EVENTS)
      console.log(
        `  !! ${EVENTS - inDb} events never arrived: the broker dropped them (see below)`,
      );
    report(
      `DeviceIngest via Mosquitto (${MQTT}), ${PUBLISHERS} publisher processes, QoS 1`,
      inDb,
      seconds,
    );
    await ingest.close();
    await session.client.endAsync();
    rmSync(journalDir, { recursive: true, force: true });
  }

  const limit = results[0].rate;
  for (const { label, rate } of results.slice(1))
    console.log(`ratio ${label.split(',')[0]} / limit: ${(rate / limit).toFixed(2)}`);
} finally {
  await pool.end();
  await scratch.drop();
}
