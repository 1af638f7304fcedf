/* global URL, setTimeout */
// Sustained device events per second into Postgres, three ways, in one run:
//   1. the limit: the same rows by one `INSERT … SELECT unnest(…)` per batch, pg directly;
//   2. storeBatch (the controller's DB-side ingest: join with devices, ON CONFLICT, counts) on the
//      same batches;
//   3. the whole path: DeviceIngest on real Mosquitto, from the first event until every event is
//      in Postgres (two modes, below).
// Run: npm run bench -- ingest   (needs Postgres on 127.0.0.1:5432 and the mosquitto binary).
// Without BENCH_MQTT_URL it starts a private Mosquitto with bench/mosquitto-unbounded.conf's
// settings on a free port (a default Mosquitto's 1,000-message queue would drop the backlog).
// BENCH_EVENTS (default 100,000), BENCH_BATCH (2,000), BENCH_PUBLISHERS (3), BENCH_DEVICES (2,000).
// BENCH_BASELINE=DIR also runs the whole path with DIR/device-ingest.js (an earlier build's
// dist/ingest, copied inside the repository so that it resolves @podfleet/shared), before and after
// the current one, for a before/after of the same run. BENCH_ONLY_PATH=1 skips rows 1 and 2.
// BENCH_PROFILE=FILE writes CPU profiles of the current whole path (FILE.live, FILE.backlog).
// BENCH_MODES=live,backlog (default both): see step 3.
import { randomUUID } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { privateBroker, runPublisher } from './support.mjs';
import { pino } from 'pino';

const broker =
  process.env.BENCH_MQTT_URL || process.argv[2] === '--publisher'
    ? undefined
    : await privateBroker();
const MQTT = process.env.BENCH_MQTT_URL ?? broker?.url;

if (process.argv[2] === '--publisher') await runPublisher(MQTT, process.argv.slice(3));

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
const BASELINE = process.env.BENCH_BASELINE;
const ONLY_PATH = process.env.BENCH_ONLY_PATH === '1';
const PROFILE = process.env.BENCH_PROFILE;

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

  // 1. The limit: one INSERT … SELECT unnest(…) per batch, one connection, batches one after the
  // other. Measured first and again last (the first row of a run pays the warm-up); ratios are
  // against the mean of the two.
  const limitRow = async (label) => {
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
    report(label, EVENTS, (performance.now() - start) / 1000);
    client.release();
    await pool.query('TRUNCATE device_events');
  };
  if (!ONLY_PATH) await limitRow('limit: INSERT … SELECT unnest(…) per batch');

  // 2. storeBatch, the DB side of the controller's ingest, on the same kind of batches.
  if (!ONLY_PATH) {
    const batches = makeBatches();
    const start = performance.now();
    let stored = 0;
    for (const events of batches) {
      const counts = await withSession((session) =>
        storeBatch(session, {
          states: [],
          events: events.map((event) => ({ event, receivedAt: new Date() })),
          online: [],
        }),
      );
      stored += counts.events;
    }
    const seconds = (performance.now() - start) / 1000;
    if (stored !== EVENTS) console.log(`!! storeBatch stored ${stored} of ${EVENTS}`);
    report('storeBatch (controller DB side), batches in sequence', EVENTS, seconds);
  }
  await pool.query('TRUNCATE device_events');

  // 3. The whole path: publishers → Mosquitto → DeviceIngest (journal, batcher) → Postgres.
  // `live`: the controller is subscribed while the publishers run (they share the 2 cores with it).
  // `backlog`: the events wait in the controller's broker session while it is away (as after a
  // restart); timed from its connect until every event is in Postgres: the controller's own pace,
  // with no publisher on the machine's cores. Needs a broker that queues them all (the private
  // one: bench/mosquitto-unbounded.conf).
  const spawnPublishers = async () => {
    const share = Math.ceil(EVENTS / PUBLISHERS);
    const children = [];
    for (let p = 0; p < PUBLISHERS; p++) {
      const n = Math.min(share, EVENTS - p * share);
      const child = fork(
        new URL(import.meta.url).pathname,
        ['--publisher', prefix, String(DEVICES), String(p * share), String(n)],
        { env: { ...process.env, BENCH_MQTT_URL: MQTT } },
      );
      children.push({ child, ready: new Promise((resolve) => child.once('message', resolve)) });
    }
    await Promise.all(children.map((c) => c.ready));
    const done = children.map(
      ({ child }) =>
        new Promise((resolve) => child.on('message', (m) => m.done && resolve(m.done))),
    );
    return {
      go: () => children.forEach(({ child }) => child.send({ go: true })),
      done: async () => Math.max(...(await Promise.all(done))),
    };
  };
  const wholePath = async (Ingest, label, mode, profile) => {
    const journalDir = mkdtempSync(join(tmpdir(), 'pf-bench-ingest-'));
    const clientId = `pf-bench-ctl-${randomUUID()}`;
    const shareGroup = `bench-${clientId}`;
    const options = controllerSessionOptions(clientId);
    const connect = (prepare) =>
      connectBroker(
        MQTT,
        { ...options, properties: { ...options.properties, sessionExpiryInterval: 600 } },
        prepare,
      );
    const ingest = new Ingest({
      journalDir,
      withSession,
      // Retained state/online messages of other runs on a shared broker are dropped as invalid.
      log: pino({ level: 'error' }),
      shareGroup,
    });
    // Listening before CONNACK. The earlier build has no listen(): in the backlog its receive is
    // attached here; live, its subscribe() attaches it.
    const listen = ingest.listen
      ? (client) => ingest.listen(client)
      : mode === 'backlog'
        ? (client) => client.on('message', (topic, payload) => ingest.receive(topic, payload))
        : undefined;
    const publishers = await spawnPublishers();
    let session;
    let publishSeconds;
    let start;
    if (mode === 'backlog') {
      const away = await connect();
      await away.client.subscribeAsync(
        ['state', 'events', 'online'].map((kind) => `$share/${shareGroup}/pf/v1/dev/+/${kind}`),
        { qos: 1 },
      );
      await away.client.endAsync();
      publishers.go();
      publishSeconds = await publishers.done();
    }
    const inspector = profile ? new Session() : undefined;
    if (inspector) {
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.start');
    }
    let cpu = process.cpuUsage();
    if (mode === 'backlog') {
      start = performance.now();
      session = await connect(listen);
      await ingest.replay();
    } else {
      session = await connect(listen);
      await ingest.replay();
      await ingest.subscribe(session.client, session.sharedSubscriptions);
      start = performance.now();
      cpu = process.cpuUsage();
      publishers.go();
      publishSeconds = await publishers.done();
    }
    const atPublished = { received: ingest.stats.received, stored: ingest.stats.stored.events };
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
    const used = process.cpuUsage(cpu);
    if (inspector) {
      const { profile: cpu } = await inspector.post('Profiler.stop');
      writeFileSync(profile, JSON.stringify(cpu));
      inspector.disconnect();
    }
    const inDb = await count();
    console.log(
      mode === 'live'
        ? `  (publishers done after ${publishSeconds.toFixed(2)} s, when ${atPublished.received} were received and ${atPublished.stored} stored; in the end received ${ingest.stats.received}, stored ${ingest.stats.stored.events}, rows ${inDb})`
        : `  (published while away in ${publishSeconds.toFixed(2)} s; received ${ingest.stats.received}, stored ${ingest.stats.stored.events}, rows ${inDb})`,
    );
    if (inDb < EVENTS)
      console.log(
        `  !! ${EVENTS - inDb} events never arrived: the broker dropped them (see below)`,
      );
    const how =
      mode === 'live'
        ? `${PUBLISHERS} publisher processes, QoS 1`
        : 'backlog in its broker session, from connect';
    report(`${label}, ${how}`, inDb, seconds);
    console.log(
      `  controller process CPU: ${((used.user + used.system) / 1000).toFixed(0)} ms (user ${(used.user / 1000).toFixed(0)}, system ${(used.system / 1000).toFixed(0)}), ${((used.user + used.system) / inDb).toFixed(1)} µs per event`,
    );
    await ingest.close();
    // Session expiry 0 on the way out: the broker forgets this run's session.
    await session.client.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    rmSync(journalDir, { recursive: true, force: true });
    await pool.query('TRUNCATE device_events');
  };
  const modes = (process.env.BENCH_MODES ?? 'live,backlog').split(',');
  const Baseline = BASELINE
    ? (await import(join(BASELINE, 'device-ingest.js'))).DeviceIngest
    : undefined;
  for (const mode of modes) {
    if (Baseline)
      await wholePath(Baseline, `before (${BASELINE.split('/').slice(-2).join('/')})`, mode);
    await wholePath(
      DeviceIngest,
      `DeviceIngest via ${MQTT}`,
      mode,
      PROFILE && `${PROFILE}.${mode}`,
    );
    if (Baseline)
      await wholePath(Baseline, `before (${BASELINE.split('/').slice(-2).join('/')})`, mode);
  }

  if (!ONLY_PATH) {
    await limitRow('limit again, after the rest');
    const limit = (results[0].rate + results.at(-1).rate) / 2;
    console.log(`limit (mean of both): ${Math.round(limit).toLocaleString('en')} events/s`);
    for (const { label, rate } of results.slice(1, -1))
      console.log(`ratio ${label} / limit: ${(rate / limit).toFixed(2)}`);
  }
} finally {
  await pool.end();
  await scratch.drop();
  broker?.stop();
}
