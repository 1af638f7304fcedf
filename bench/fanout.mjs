/* global Buffer, URL, setTimeout */
// Fan-out: N simulated devices (real agents on in-memory hosts, in several child processes) on
// Mosquitto and a real controller on a scratch Postgres. Times, from `rollout start` (batch = all):
// every device has received the new manifest; every device's applied state is in Postgres.
// "Handed out" is when an observer (plain clients subscribed to the same topics, in another
// process) saw each device's new manifest: delivery apart from the sims' own event loops.
// Beside it, in the same run, the limit: one plain MQTT client publishing N retained messages (the
// size of a manifest) to N subscribed clients (in the same child processes).
// "Received" is the same event on both sides: the client's MQTT.js `message` for the topic (for a
// sim, the session's `desired`, whose first listener is the bench's, before the agent's own);
// "verified" (sims only) is after the agent's synchronous intake: JSON, schema, Ed25519 signature.
// Run: npm run bench -- fanout   BENCH_DEVICES (default 1000), BENCH_PROCS (3).
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { insertDevices, simFleet } from './support.mjs';

const MQTT = process.env.PODFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const V1 = 'registry.example/acme/web:1.0';
const V2 = 'registry.example/acme/web:2.0';

// User + system CPU of this process so far, in seconds.
const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

// A plain client; the broker, still forgetting 10,000 sims, can miss a CONNACK: try again.
const connectPlain = async (clientId) => {
  for (let attempt = 1; ; attempt++) {
    const client = mqtt.connect(MQTT, { protocolVersion: 5, clientId, reconnectPeriod: 0 });
    client.on('error', () => {}); // a refused or timed-out attempt closes; the loop decides
    try {
      await new Promise((resolve, reject) => {
        client.once('connect', resolve);
        client.once('close', () => reject(new Error(`${clientId}: no CONNACK`)));
      });
      return client;
    } catch (error) {
      client.end(true);
      if (attempt === 3) throw error;
    }
  }
};

if (process.argv[2] === '--child') {
  // A share of the devices (sim mode) or of the plain subscribers (limit mode).
  const [, , , mode, prefix, count, keyFile] = process.argv;
  const n = Number(count);
  const firstAt = new Map();
  // Sims only: when each device's agent had checked the manifest (schema, signature, device).
  const verifiedAt = new Map();
  const closers = [];
  if (mode === 'sim') {
    const { SimFleet } = await import('../packages/agent/dist/sim/sim-fleet.js');
    const { readPublicKeys } = await import('../packages/agent/dist/cli/sim-options.js');
    const fleet = new SimFleet({
      devices: n,
      broker: MQTT,
      prefix,
      labels: {},
      failRate: 0,
      offlineRate: 0,
      trustedKeys: await readPublicKeys(keyFile),
      settle: 1,
      logger: pino({ level: 'silent' }),
    });
    for (const device of fleet.devices) {
      device.session.on('desired', (payload) => {
        if (!firstAt.has(device.id) && payload.includes(V2)) firstAt.set(device.id, Date.now());
      });
    }
    await fleet.start();
    // Registered after the agent's own listener (fleet.start), so it runs once the agent's
    // synchronous intake (JSON, schema, Ed25519 signature) of this message is done.
    for (const device of fleet.devices) {
      device.session.on('desired', (payload) => {
        if (!verifiedAt.has(device.id) && payload.includes(V2))
          verifiedAt.set(device.id, Date.now());
      });
    }
    closers.push(() => fleet.stop());
  } else if (mode === 'observe') {
    // The broker's side of delivery, apart from the sims' busy event loops: plain clients
    // subscribed to every device's desired topic, 1,000 topics each (Mosquitto queues at most
    // 1,000 QoS 1 messages per client), noting when each device's V2 manifest passes.
    const ids = JSON.parse(await (await import('node:fs/promises')).readFile(keyFile, 'utf8'));
    const clients = [];
    for (let i = 0; i < ids.length; i += 1000) {
      const client = await mqtt.connectAsync(MQTT, {
        protocolVersion: 5,
        clientId: `pf-bench-obs-${prefix}-${i}`,
        reconnectPeriod: 0,
      });
      client.on('message', (topic, payload) => {
        if (!firstAt.has(topic) && payload.includes(V2)) firstAt.set(topic, Date.now());
      });
      await client.subscribeAsync(
        ids.slice(i, i + 1000).map((id) => `pf/v1/dev/${id}/desired`),
        { qos: 1 },
      );
      clients.push(client);
    }
    closers.push(() => Promise.all(clients.map((c) => c.endAsync())));
  } else {
    const clients = [];
    for (let i = 0; i < n; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, async (_, j) => {
          const topic = `bench/limit/${prefix}/${i + j}`;
          const client = await connectPlain(`pf-bench-sub-${prefix}-${i + j}`);
          client.on('message', () => {
            if (!firstAt.has(topic)) firstAt.set(topic, Date.now());
          });
          await client.subscribeAsync(topic, { qos: 1 });
          clients.push(client);
        }),
      );
    }
    closers.push(() => Promise.all(clients.map((c) => c.endAsync())));
  }
  process.send({ ready: true });
  let profiler;
  process.on('message', async (message) => {
    if (message.profile) {
      // BENCH_PROFILE: this child's CPU profile over the rollout, written when it stops.
      const { Session } = await import('node:inspector/promises');
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
      profiler.file = `${message.profile}.${mode}-${prefix}.cpuprofile`;
      process.send({ profiling: true });
    }
    if (message.poll) {
      const times = [...firstAt.values()];
      const verified = [...verifiedAt.values()];
      process.send({
        received: firstAt.size,
        last: Math.max(0, ...times),
        verified: verifiedAt.size,
        verifiedLast: Math.max(0, ...verified),
        cpu: cpuSeconds(),
        ...(message.times ? { times, verifiedTimes: verified } : {}),
      });
    }
    if (message.stop) {
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        (await import('node:fs')).writeFileSync(profiler.file, JSON.stringify(profile));
      }
      for (const close of closers) await close();
      process.send({ stopped: true });
      process.exit(0);
    }
  });
} else {
  await main();
}

async function main() {
  const h = await import('../packages/controller/dist/rollouts/e2e/harness.js');
  const N = Number(process.env.BENCH_DEVICES ?? 1000);
  const PROCS = Number(process.env.BENCH_PROCS ?? 3);
  const cleanups = new h.Cleanups();
  const children = [];
  const spawnChildren = async (mode, prefixOf, keyFile = '') => {
    const share = Math.ceil(N / PROCS);
    const started = [];
    for (let p = 0; p < PROCS; p++) {
      const n = Math.min(share, N - p * share);
      const child = fork(new URL(import.meta.url).pathname, [
        '--child',
        mode,
        prefixOf(p),
        String(n),
        keyFile,
      ]);
      const inbox = [];
      const waiters = [];
      child.on('message', (m) => (waiters.length ? waiters.shift()(m) : inbox.push(m)));
      const next = () =>
        new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : waiters.push(resolve)));
      const entry = { child, next, n };
      children.push(entry);
      started.push(entry);
    }
    await Promise.all(started.map((c) => c.next()));
    return started;
  };
  const spawnOne = async (mode, prefix, n, file) => {
    const child = fork(new URL(import.meta.url).pathname, ['--child', mode, prefix, String(n), file]); // prettier-ignore
    const inbox = [];
    const waiters = [];
    child.on('message', (m) => (waiters.length ? waiters.shift()(m) : inbox.push(m)));
    const next = () =>
      new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : waiters.push(resolve)));
    const entry = { child, next, n };
    children.push(entry);
    await next();
    return [entry];
  };
  const poll = async (set, withTimes = false) => {
    let received = 0;
    let last = 0;
    let verified = 0;
    let verifiedLast = 0;
    let cpu = 0;
    const times = [];
    const verifiedTimes = [];
    for (const c of set) {
      c.child.send({ poll: true, times: withTimes });
      const m = await c.next();
      received += m.received;
      last = Math.max(last, m.last);
      verified += m.verified;
      cpu += m.cpu;
      verifiedLast = Math.max(verifiedLast, m.verifiedLast);
      if (m.times) times.push(...m.times);
      if (m.verifiedTimes) verifiedTimes.push(...m.verifiedTimes);
    }
    return { received, last, verified, verifiedLast, cpu, times, verifiedTimes };
  };
  // When the devices received it: the first, the median, the 90th percentile (s after start).
  const spread = (times, start) => {
    const sorted = times.map((t) => (t - start) / 1000).sort((a, b) => a - b);
    const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
    return sorted.length === 0
      ? 'none'
      : `first ${at(0).toFixed(2)} s, median ${at(0.5).toFixed(2)} s, p90 ${at(0.9).toFixed(2)} s`;
  };
  const stop = async (set) => {
    for (const c of set) c.child.send({ stop: true });
    await Promise.all(set.map((c) => c.next()));
    set.forEach((c) => children.splice(children.indexOf(c), 1));
  };
  cleanups.add(async () => {
    for (const c of children) c.child.kill('SIGKILL');
  });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  try {
    console.log(
      `podfleet fan-out benchmark: ${N} devices in ${PROCS} sim processes, controller in this process; ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${MQTT}; ${new Date().toISOString()}`,
    );
    const site = await h.controllerSite(cleanups);
    site.env.LOG_LEVEL = 'warn';
    // BENCH_TRACE=1: the controller's info log (engine passes, recomputes), timed from the start.
    const logLines = [];
    const e = await h.startE2eController(
      site,
      process.env.BENCH_TRACE ? h.capturingLogger(logLines) : undefined,
    );
    cleanups.add(() => e.controller.close());
    const prisma = e.controller.db.prisma;
    const base = `bench-fan-${randomBytes(3).toString('hex')}`;
    const { ids, prefixOf, share } = simFleet(h, cleanups, base, N, PROCS);
    let t = performance.now();
    if (N <= 5000) await h.provisionFleet(e, { ids, label: base, image: V1 }, site.dataDir);
    else {
      // Above 5,000, registering through the CLI takes minutes: devices straight into the table,
      // the group, service and assignment through the CLI as provisionFleet does.
      await insertDevices(
        prisma,
        ids.map((id) => ({ id, labels: { fleet: base } })),
      );
      await h.mustRun(e.cli('groups', 'create', 'edge', '--selector', `fleet=${base}`, '--priority', '1'), 'groups create'); // prettier-ignore
      const { writeFile } = await import('node:fs/promises');
      await writeFile(`${site.dataDir}/web.yaml`, `name: web\nimage: ${V1}\nready: { timeout: 20s, settle: 1s }\n`); // prettier-ignore
      await h.mustRun(
        e.cli('services', 'apply', '-f', `${site.dataDir}/web.yaml`),
        'services apply',
      );
      await h.mustRun(e.cli('assign', 'edge', 'web'), 'assign');
    }
    console.log(
      `setup: ${N} devices registered in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    t = performance.now();
    const sims = await spawnChildren('sim', prefixOf, e.publicKeyFile);
    await h.waitUntilAllRun(prisma, ids, V1, 120_000 + N * 50);
    const idsFile = `${site.dataDir}/bench-ids.json`;
    await (await import('node:fs/promises')).writeFile(idsFile, JSON.stringify(ids));
    const observers = await spawnOne('observe', `${base}-obs`, N, idsFile);
    console.log(
      `setup: every device runs V1 after ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );

    // BENCH_PROFILE=FILE: CPU profiles over the rollout only, of this process (the controller)
    // into FILE and of each sim process into FILE.sim-PREFIX.cpuprofile.
    let profiler;
    if (process.env.BENCH_PROFILE) {
      for (const c of sims) c.child.send({ profile: process.env.BENCH_PROFILE });
      await Promise.all(sims.map((c) => c.next()));
      const { Session } = await import('node:inspector/promises');
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    // CPU used from `rollout start` until every device verified its manifest: the sims', this
    // process's (the controller, the CLI's request, the bench's polls).
    const simCpuBefore = (await poll(sims)).cpu;
    const ownCpuBefore = cpuSeconds();
    let cpuWindow;
    // The rollout: batch = all, no canary.
    const start = Date.now();
    const started = await h.mustRun(
      e.cli('rollout', 'start', 'web', V2, '--group', 'edge', '--batch-size', '100%', '--health-timeout', '120s', '--json'), // prettier-ignore
      'rollout start',
    );
    const rolloutId = JSON.parse(started.stdout).id;
    const acceptedMs = Date.now() - start;
    let delivered;
    let verified;
    let passed;
    let stored;
    const deadline = Date.now() + 120_000 + N * 20;
    while (
      (delivered === undefined || verified === undefined || stored === undefined) &&
      Date.now() < deadline
    ) {
      if (delivered === undefined || verified === undefined) {
        const polled = await poll(sims);
        if (polled.received === N) delivered ??= (polled.last - start) / 1000;
        if (polled.verified === N && verified === undefined) {
          verified = (polled.verifiedLast - start) / 1000;
          cpuWindow = { sims: polled.cpu - simCpuBefore, controller: cpuSeconds() - ownCpuBefore };
        }
      }
      if (passed === undefined) {
        const { received, last } = await poll(observers);
        if (received === N) passed = (last - start) / 1000;
      }
      if (stored === undefined) {
        // By the fleet's id prefix, not a 10,000-id array: binding that array every 50 ms (pg
        // escapes each element in JavaScript) was CPU taken from the controller being measured.
        const rows = await prisma.$queryRawUnsafe(
          `SELECT count(*)::int AS n FROM devices
           WHERE starts_with(id, $1) AND last_state->'services' @> $2::jsonb`,
          `${base}-`,
          JSON.stringify([{ name: 'web', image: V2, ready: true }]),
        );
        if (rows[0].n === N) stored = (Date.now() - start) / 1000;
      }
      await sleep(50);
    }
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      (await import('node:fs')).writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
      profiler.disconnect();
    }
    const simTimes = await poll(sims, true);
    const spreadOf = spread(simTimes.times, start);
    const verifiedSpread = spread(simTimes.verifiedTimes, start);
    const passedSpread = spread((await poll(observers, true)).times, start);
    await stop(observers);
    if (process.env.BENCH_TRACE) {
      for (const line of logLines) {
        const entry = JSON.parse(line);
        if (entry.time < start && entry.level < 50) continue; // errors from the setup too
        const { time, msg, level: _l, pid: _p, hostname: _h, ...rest } = entry;
        console.log(`  +${((time - start) / 1000).toFixed(2)} s ${msg} ${JSON.stringify(rest)}`);
      }
    }
    const status = await e.controller.rollouts.status(rolloutId);
    console.log(
      `rollout ${rolloutId}: POST /v1/rollouts answered in ${(acceptedMs / 1000).toFixed(2)} s; now ${h.describeRollout(status)}`,
    );
    await stop(sims);
    const fmt = (s) => (s === undefined ? 'not reached' : `${s.toFixed(2)} s`);
    console.log(`broker handed out every manifest (observer): ${fmt(passed)}  (${passedSpread})`);
    console.log(`every device received its manifest:        ${fmt(delivered)}  (${spreadOf})`);
    console.log(`every device had verified it (agent):      ${fmt(verified)}  (${verifiedSpread})`);
    console.log(
      `every device's applied state in Postgres:   ${fmt(stored)}  (sim settle 1 s included)`,
    );
    if (cpuWindow)
      console.log(
        `CPU until every device verified: sims ${cpuWindow.sims.toFixed(2)} s (${((cpuWindow.sims / N) * 1000).toFixed(2)} ms a device), controller process ${cpuWindow.controller.toFixed(2)} s`,
      );

    // The limit: one client, N retained messages of a manifest's size, N subscribed clients.
    const manifest = await prisma.device
      .findFirst({ where: { id: ids[0] }, select: { desiredManifest: true } })
      .catch(() => null);
    const size = manifest?.desiredManifest ? JSON.stringify(manifest.desiredManifest).length : 1500;
    const payload = Buffer.alloc(size, 'x');
    const subs = await spawnChildren('limit', prefixOf);
    const publisher = await mqtt.connectAsync(MQTT, {
      protocolVersion: 5,
      clientId: `pf-bench-pub-${base}`,
      reconnectPeriod: 0,
    });
    const topicsOf = [];
    for (let p = 0; p < PROCS; p++)
      for (let i = 0; i < Math.min(share, N - p * share); i++)
        topicsOf.push(`bench/limit/${prefixOf(p)}/${i}`);
    cleanups.add(async () => {
      for (let i = 0; i < topicsOf.length; i += 500)
        await Promise.all(
          topicsOf
            .slice(i, i + 500)
            .map((topic) => publisher.publishAsync(topic, '', { qos: 1, retain: true })),
        );
      await publisher.endAsync();
    });
    const limitStart = Date.now();
    await Promise.all(
      topicsOf.map((topic) => publisher.publishAsync(topic, payload, { qos: 1, retain: true })),
    );
    let limit;
    const limitDeadline = Date.now() + 60_000;
    while (limit === undefined && Date.now() < limitDeadline) {
      const { received, last } = await poll(subs);
      if (received === N) limit = (last - limitStart) / 1000;
      else await sleep(20);
    }
    await stop(subs);

    console.log(`manifest size ${size} bytes`);
    console.log(`limit, plain MQTT, N retained to N clients: ${fmt(limit)}`);
    if (delivered !== undefined && limit !== undefined)
      console.log(
        `ratio podfleet delivery / limit (time):     ${(delivered / limit).toFixed(1)}x  (speed ${(limit / delivered).toFixed(2)})`,
      );
    if (passed !== undefined && limit !== undefined)
      console.log(
        `ratio broker hand-out / limit (time):       ${(passed / limit).toFixed(1)}x  (speed ${(limit / passed).toFixed(2)})`,
      );
  } finally {
    await cleanups.run();
  }
}
