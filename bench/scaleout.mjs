/* global URL, setTimeout */
// Ingest throughput of one controller process against two, in one run: device events into
// Postgres through one shared-subscription group on one Mosquitto.
// Each controller is a child process running DeviceIngest as `podfleet serve` does (listening
// before CONNACK, journal replay, `$share/GROUP/…` subscriptions, a pg pool of 4).
//   backlog: the events wait in the controllers' broker sessions while they are away (Mosquitto
//            gives each member its turns, offline or not); timed from the controllers' connect
//            until every event is in Postgres. No publisher shares the cores meanwhile.
//   live:    the controllers are connected while publisher processes send (QoS 1).
// Run: npm run bench -- scaleout. Without BENCH_MQTT_URL it starts a private Mosquitto with
// bench/mosquitto-unbounded.conf's settings on a free port (the backlog would overflow a default
// Mosquitto's 1,000-message queue), and stops it at the end. BENCH_EVENTS (100,000), BENCH_PUBLISHERS (3), BENCH_DEVICES (2,000),
// BENCH_MODES (backlog,live), BENCH_ORDER (1,2,1: controller counts, in the order they run).
import { randomUUID } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem, tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { privateBroker, runPublisher } from './support.mjs';

const SELF = new URL(import.meta.url).pathname;
const isChild = process.argv[2] === '--publisher' || process.argv[2] === '--controller';
const broker = process.env.BENCH_MQTT_URL || isChild ? undefined : await privateBroker();
const MQTT = process.env.BENCH_MQTT_URL ?? broker?.url;

if (process.argv[2] === '--publisher') await runPublisher(MQTT, process.argv.slice(3));

if (process.argv[2] === '--controller') {
  // One controller's ingest: connects on `go`, reports its counts on `stats`, leaves on `stop`.
  const [, , , clientId, shareGroup, databaseUrl] = process.argv;
  const { pino } = await import('pino');
  const { pgSession } = await import('../packages/controller/dist/db/session.js');
  const { DeviceIngest } = await import('../packages/controller/dist/ingest/device-ingest.js');
  const { connectBroker, controllerSessionOptions } =
    await import('../packages/controller/dist/mqtt/connect.js');
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const withSession = async (work) => {
    const client = await pool.connect();
    try {
      return await work(pgSession(client));
    } finally {
      client.release();
    }
  };
  const journalDir = mkdtempSync(join(tmpdir(), 'pf-bench-scale-'));
  const ingest = new DeviceIngest({
    journalDir,
    withSession,
    log: pino({ level: 'error' }),
    shareGroup,
  });
  let session;
  let since;
  process.on('message', async (message) => {
    if (message.go) {
      since = process.cpuUsage();
      session = await connectBroker(MQTT, controllerSessionOptions(clientId, 600), (client) =>
        ingest.listen(client),
      );
      await ingest.replay();
      await ingest.subscribe(session.client, session.sharedSubscriptions);
      process.send({ connected: true });
    } else if (message.stats) {
      process.send({ stats: ingest.stats, cpu: process.cpuUsage(since) });
    } else if (message.stop) {
      await session.client.endAsync(false, {
        properties: { sessionExpiryInterval: message.forget ? 0 : 600 },
      });
      await ingest.close();
      await pool.end();
      rmSync(journalDir, { recursive: true, force: true });
      process.send({ stopped: true });
      process.exit(0);
    }
  });
  process.send({ ready: true });
  await new Promise(() => undefined);
}

const { createScratchDatabase } = await import('../packages/controller/dist/db/testing.js');
const { migrateDatabase } = await import('../packages/controller/dist/db/migrate.js');

const EVENTS = Number(process.env.BENCH_EVENTS ?? 100_000);
const PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? 3);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 2000);
const MODES = (process.env.BENCH_MODES ?? 'backlog,live').split(',');
const ORDER = (process.env.BENCH_ORDER ?? '1,2,1').split(',').map(Number);

const scratch = await createScratchDatabase();
await migrateDatabase(scratch.url);
const pool = new pg.Pool({ connectionString: scratch.url, max: 2 });
const count = async () =>
  Number((await pool.query('SELECT count(*) AS n FROM device_events')).rows[0].n);

/** A child that answers `{ready}` first; `ask` sends a message and waits for the answer with `key`. */
async function child(args) {
  const process_ = fork(SELF, args, { env: { ...process.env, BENCH_MQTT_URL: MQTT } });
  const answers = [];
  const waiting = [];
  process_.on('message', (message) => {
    const index = waiting.findIndex((w) => w.key in message);
    if (index >= 0) waiting.splice(index, 1)[0].resolve(message);
    else answers.push(message);
  });
  const next = (key) => {
    const index = answers.findIndex((m) => key in m);
    if (index >= 0) return Promise.resolve(answers.splice(index, 1)[0]);
    return new Promise((resolve) => waiting.push({ key, resolve }));
  };
  await next('ready');
  return {
    ask: (message, key) => {
      const answer = next(key);
      process_.send(message);
      return answer;
    },
    next,
  };
}

async function publishAll(prefix) {
  const share = Math.ceil(EVENTS / PUBLISHERS);
  const publishers = [];
  for (let p = 0; p < PUBLISHERS; p++) {
    const n = Math.min(share, EVENTS - p * share);
    publishers.push(child(['--publisher', prefix, String(DEVICES), String(p * share), String(n)]));
  }
  const ready = await Promise.all(publishers);
  return {
    go: () => Promise.all(ready.map((p) => p.ask({ go: true }, 'done'))),
  };
}

async function untilStored() {
  let last = await count();
  let lastAt = performance.now();
  while (last < EVENTS && performance.now() - lastAt < 5000) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = await count();
    if (now !== last) {
      last = now;
      lastAt = performance.now();
    }
  }
  return { stored: last, at: lastAt };
}

async function run(mode, controllers, prefix) {
  const group = `bench-scale-${randomUUID().slice(0, 8)}`;
  const ids = Array.from({ length: controllers }, (_, i) => `${group}-${i}`);
  const start = async () =>
    Promise.all(ids.map((id) => child(['--controller', id, group, scratch.url])));
  let running = await start();
  const publishers = await publishAll(prefix);
  let began;
  if (mode === 'backlog') {
    // Sessions and subscriptions made, then every controller away while the events are sent.
    await Promise.all(running.map((c) => c.ask({ go: true }, 'connected')));
    await Promise.all(running.map((c) => c.ask({ stop: true }, 'stopped')));
    await publishers.go();
    running = await start();
    began = performance.now();
    await Promise.all(running.map((c) => c.ask({ go: true }, 'connected')));
  } else {
    await Promise.all(running.map((c) => c.ask({ go: true }, 'connected')));
    began = performance.now();
    await publishers.go();
  }
  const { stored, at } = await untilStored();
  const seconds = (at - began) / 1000;
  const stats = await Promise.all(running.map((c) => c.ask({ stats: true }, 'stats')));
  await Promise.all(running.map((c) => c.ask({ stop: true, forget: true }, 'stopped')));
  await pool.query('TRUNCATE device_events');
  const shares = stats.map((s) => s.stats.stored.events).join(' + ');
  const cpu = stats.map((s) => ((s.cpu.user + s.cpu.system) / 1000).toFixed(0)).join(' + ');
  console.log(
    `${mode.padEnd(8)} ${controllers} controller${controllers > 1 ? 's' : ' '}: ${String(stored).padStart(7)} events in ${seconds.toFixed(2).padStart(6)} s = ${Math.round(
      stored / seconds,
    )
      .toLocaleString('en')
      .padStart(
        7,
      )} events/s (stored by each: ${shares}; controller CPU ms: ${cpu}; load ${loadavg()[0].toFixed(1)})`,
  );
  if (stored < EVENTS) console.log(`  !! ${EVENTS - stored} events missing`);
  return stored / seconds;
}

try {
  const prefix = `bench-${randomUUID().slice(0, 6)}`;
  await pool.query('INSERT INTO devices (id, updated_at) SELECT unnest($1::text[]), now()', [
    Array.from({ length: DEVICES }, (_, i) => `${prefix}-${i}`),
  ]);
  console.log(
    `podfleet scale-out benchmark: ${EVENTS} events, ${DEVICES} devices, broker ${MQTT}; ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${new Date().toISOString()}`,
  );
  for (const mode of MODES) {
    const rates = {};
    for (const controllers of ORDER) {
      (rates[controllers] ??= []).push(await run(mode, controllers, prefix));
    }
    if (rates[1] && rates[2]) {
      const mean = (list) => list.reduce((a, b) => a + b, 0) / list.length;
      console.log(`${mode}: two / one = ${(mean(rates[2]) / mean(rates[1])).toFixed(2)}`);
    }
  }
} finally {
  await pool.end();
  await scratch.drop();
  broker?.stop();
}
