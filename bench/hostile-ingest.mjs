/* global Buffer, URL, setTimeout */
// Good devices' ingest rate while one device floods malformed messages, against the undisturbed
// rate in the same run (issue 14): publishers → Mosquitto → DeviceIngest → Postgres, live.
// Rows: undisturbed, flooded, undisturbed again (the machine's noise); ratio flooded / mean of the
// undisturbed. The flooder is one more process on the same cores, publishing on its own topics
// (QoS 1, 1,000 in flight) a mix of what issue 14 found: not JSON, generation 3e9, year-0 times,
// NUL, 1 KB versions, and one 200 KB payload in 50. A fourth row floods with the mute off
// (QuarantineGate), to show what the mute saves.
// Run: npm run bench -- hostile-ingest  (Postgres on 127.0.0.1:5432, the mosquitto binary).
// BENCH_EVENTS (default 60,000), BENCH_PUBLISHERS (2), BENCH_DEVICES (1,000).
import { randomUUID } from 'node:crypto';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { pino } from 'pino';
import { privateBroker, runPublisher } from './support.mjs';

if (process.argv[2] === '--publisher')
  await runPublisher(process.env.BENCH_MQTT_URL, process.argv.slice(3));
if (process.argv[2] === '--flooder') await runFlooder(process.env.BENCH_MQTT_URL, process.argv[3]);

const { createScratchDatabase } = await import('../packages/controller/dist/db/testing.js');
const { migrateDatabase } = await import('../packages/controller/dist/db/migrate.js');
const { pgSession } = await import('../packages/controller/dist/db/session.js');
const { DeviceIngest } = await import('../packages/controller/dist/ingest/device-ingest.js');
const { connectBroker, controllerSessionOptions } =
  await import('../packages/controller/dist/mqtt/connect.js');

const EVENTS = Number(process.env.BENCH_EVENTS ?? 60_000);
const PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? 2);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 1000);

/** The flooder child: malformed messages on its own device's topics until told to stop. */
async function runFlooder(url, device) {
  const client = await mqtt.connectAsync(url, { clientId: `pf-bench-flood-${randomUUID()}` });
  const state = (patch) =>
    JSON.stringify({
      device,
      generation: 1,
      reportedAt: new Date().toISOString(),
      agent: { version: '0.1.0' },
      host: { podman: '5', systemd: '257', arch: 'x86_64', unitStyle: 'quadlet' },
      services: [],
      ...patch,
    });
  const event = (patch) =>
    JSON.stringify({
      id: randomUUID(),
      device,
      at: new Date().toISOString(),
      type: 'error',
      message: 'x',
      ...patch,
    });
  const kinds = [
    ['state', () => Buffer.from([0xff, 0x00, 0x7b])],
    ['state', () => state({ generation: 3_000_000_000 })],
    ['state', () => state({ reportedAt: '0000-01-01T00:00:00Z' })],
    ['events', () => event({ at: '0000-01-01T00:00:00Z' })],
    ['events', () => event({ message: 'a\u0000b' })],
    ['state', () => state({ agent: { version: 'v'.repeat(1024) } })],
  ];
  const big = Buffer.alloc(200 * 1024, 0x61);
  let stop = false;
  process.once('message', () => (stop = true));
  process.send({ ready: true });
  let sent = 0;
  let bytes = 0;
  const inflight = [];
  while (!stop) {
    const [kind, make] = kinds[sent % kinds.length];
    const payload = sent % 50 === 49 ? big : make();
    bytes += payload.length;
    inflight.push(client.publishAsync(`pf/v1/dev/${device}/${kind}`, payload, { qos: 1 }));
    sent++;
    if (inflight.length >= 1000) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  process.send({ sent, bytes });
  await client.endAsync();
  process.exit(0);
}

const broker = await privateBroker();
const MQTT = broker.url;
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

const child = (args) => {
  const process_ = fork(new URL(import.meta.url).pathname, args, {
    env: { ...process.env, BENCH_MQTT_URL: MQTT },
  });
  const messages = [];
  const waiters = [];
  process_.on('message', (message) => {
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else messages.push(message);
  });
  return {
    process: process_,
    next: () =>
      messages.length > 0
        ? Promise.resolve(messages.shift())
        : new Promise((resolve) => waiters.push(resolve)),
  };
};

try {
  const prefix = `good-${randomUUID().slice(0, 6)}`;
  const hostile = `hostile-${randomUUID().slice(0, 6)}`;
  await pool.query('INSERT INTO devices (id, updated_at) SELECT unnest($1::text[]), now()', [
    [...Array.from({ length: DEVICES }, (_, i) => `${prefix}-${i}`), hostile],
  ]);
  console.log(
    `podfleet hostile-ingest benchmark: ${EVENTS} good events from ${DEVICES} devices by ${PUBLISHERS} publishers; ${cpus().length} cores (${cpus()[0].model}), Node ${process.version}; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ${new Date().toISOString()}`,
  );

  const run = async (label, flood, quarantine) => {
    const journalDir = mkdtempSync(join(tmpdir(), 'pf-bench-hostile-'));
    const clientId = `pf-bench-ctl-${randomUUID()}`;
    const ingest = new DeviceIngest({
      journalDir,
      withSession,
      log: pino({ level: 'silent' }),
      shareGroup: `bench-${clientId}`,
      quarantine,
    });
    const options = controllerSessionOptions(clientId);
    const session = await connectBroker(MQTT, options, (client) => ingest.listen(client));
    await ingest.replay();
    await ingest.subscribe(session.client, session.sharedSubscriptions);
    const flooder = flood ? child(['--flooder', hostile]) : undefined;
    if (flooder) await flooder.next();
    const share = Math.ceil(EVENTS / PUBLISHERS);
    const publishers = Array.from({ length: PUBLISHERS }, (_, p) =>
      child([
        '--publisher',
        prefix,
        String(DEVICES),
        String(p * share),
        String(Math.min(share, EVENTS - p * share)),
      ]),
    );
    await Promise.all(publishers.map((p) => p.next()));
    const before = ingest.stats.stored.events;
    const cpu = process.cpuUsage();
    const start = performance.now();
    publishers.forEach((p) => p.process.send({ go: true }));
    while (ingest.stats.stored.events - before < EVENTS) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (performance.now() - start > 300_000) throw new Error(`${label}: not all stored in 300 s`);
    }
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    let flooded = '';
    if (flooder) {
      flooder.process.send({ stop: true });
      const { sent, bytes } = await flooder.next();
      flooded = `; flooder sent ${sent.toLocaleString('en')} malformed messages (${(bytes / 2 ** 20).toFixed(0)} MiB, ${Math.round(sent / seconds).toLocaleString('en')}/s), ingest refused ${ingest.stats.invalid.toLocaleString('en')} (${ingest.stats.muted.toLocaleString('en')} unread, muted), quarantined ${ingest.stats.quarantined}`;
    }
    await ingest.close();
    await session.client.endAsync(false, { properties: { sessionExpiryInterval: 0 } });
    rmSync(journalDir, { recursive: true, force: true });
    const rate = EVENTS / seconds;
    console.log(
      `${label.padEnd(40)} ${seconds.toFixed(2).padStart(6)} s ${Math.round(rate).toLocaleString('en').padStart(8)} good events/s, controller CPU ${((used.user + used.system) / 1000).toFixed(0)} ms${flooded}`,
    );
    return rate;
  };

  const first = await run('undisturbed', false);
  const flooded = await run('one device flooding malformed', true);
  // The same flood with the mute off: every malformed message parsed and checked.
  const unmuted = await run('the same, mute off', true, { muteAfter: Infinity });
  const again = await run('undisturbed again', false);
  const undisturbed = (first + again) / 2;
  console.log(
    `ratio flooded / undisturbed (mean of both): ${(flooded / undisturbed).toFixed(2)}; mute off: ${(unmuted / undisturbed).toFixed(2)}; load average after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  await pool.end();
  await scratch.drop();
  broker.stop();
}
