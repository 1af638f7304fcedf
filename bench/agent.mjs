/* global URL, setTimeout, setInterval, clearInterval */
// Agent footprint: RSS and CPU of one agent idle (BENCH_IDLE_SECONDS, default 60) and during an
// apply, and how long a no-op reconcile takes — the agent as a device runs it: the esbuild bundle
// that enrollment installs (packages/agent/scripts/bundle.mjs, built here into a temp dir) under
// the environment of the unit rendered beside it (its Environment= lines: NODE_OPTIONS).
//   0. Bare Node (`node -e 'setInterval(() => {}, 1e3)'`, no flags), idle: the floor, measured in
//      the same run so that the agent's figure can be given as a ratio.
//   1. `podfleet-agent run --config FILE` from the bundle (the real systemd + Podman host driver) on
//      a signed manifest of zero services: idle. BENCH_AGENT_BEFORE=FILE adds the same for another
//      entry (e.g. an older bundle) without the unit's environment, for a before/after in one run.
//   2. The same runtime (`startDeviceAgent`, as `run` calls it, from packages/agent/dist: the
//      bundle has no in-memory host) on the in-memory host, in a child process of this script with
//      the unit's environment: idle, then an apply of one service (gate settle 1 s), then the drift
//      check — a reconcile that finds nothing to do — timed in the process.
// RSS and CPU come from /proc/PID/{status,stat}, sampled once a second.
// Run: npm run bench -- agent   (Mosquitto at PODFLEET_TEST_MQTT_URL or mqtt://127.0.0.1:1883)
import { execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';

const MQTT = process.env.PODFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 60);
const ROOT = new URL('..', import.meta.url).pathname;
// BENCH_AGENT_BIN: another entry for `podfleet-agent run` than the bundle (e.g. the package's bin).
const AGENT_BIN = process.env.BENCH_AGENT_BIN;
const BEFORE_BIN = process.env.BENCH_AGENT_BEFORE;
const CLK_TCK = 100; // getconf CLK_TCK on Linux
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

if (process.argv[2] === '--child') await child(process.argv[3]);
else await main();

/** The agent as `podfleet-agent run` starts it, on the in-memory host; answers timing requests. */
async function child(configFile) {
  const { loadAgentConfig } = await import('../packages/agent/dist/config/load-config.js');
  const { startDeviceAgent } = await import('../packages/agent/dist/runtime/start-agent.js');
  // The simulator's in-memory host: its registry serves any image (as the sim's devices see it).
  const { SimHost } = await import('../packages/agent/dist/sim/sim-host.js');
  const { systemClock } = await import('../packages/agent/dist/clock/clock.js');
  const { pino } = await import('pino');
  const loaded = await loadAgentConfig(configFile);
  const logger = pino({ level: loaded.config.logLevel, base: { device: loaded.config.device } });
  const driver = new SimHost({ clock: systemClock, name: loaded.config.device }, false);
  const running = await startDeviceAgent(loaded, driver, logger);
  process.send({ started: true });
  process.on('message', async (message) => {
    if (message.noop) {
      // The drift timer's job (private in TypeScript, a plain method in the built JS): read the
      // host, compare with the applied record, reconcile — here with nothing to change.
      const times = [];
      for (let i = 0; i < message.noop; i++) {
        const began = process.hrtime.bigint();
        await running.agent.checkDrift();
        times.push(Number(process.hrtime.bigint() - began) / 1e6);
      }
      process.send({ times });
    }
    if (message.stop) {
      await running.stop();
      process.send({ stopped: true });
      process.exit(0);
    }
  });
}

async function main() {
  const { generateSigningKey, signManifest, topics } =
    await import('../packages/shared/dist/index.js');
  console.log(
    `podfleet agent footprint: ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${MQTT}; ${new Date().toISOString()}; idle window ${IDLE_SECONDS} s`,
  );
  const key = generateSigningKey();
  const dir = await mkdtemp(join(tmpdir(), 'pf-bench-agent-'));
  const bundle = JSON.parse(
    execFileSync(process.execPath, [
      join(ROOT, 'packages/agent/scripts/bundle.mjs'),
      '--out',
      join(dir, 'podfleet-agent.mjs'),
    ]),
  );
  const unitEnv = unitEnvironment(await readFile(bundle.unitPath, 'utf8'));
  // BENCH_AGENT_NODE_OPTIONS: other Node flags for the agent processes than the unit's.
  if (process.env.BENCH_AGENT_NODE_OPTIONS !== undefined) {
    unitEnv.NODE_OPTIONS = process.env.BENCH_AGENT_NODE_OPTIONS;
  }
  const agentBin = AGENT_BIN ?? bundle.path;
  console.log(
    `agent: ${agentBin}${AGENT_BIN ? '' : ` (bundle, ${(bundle.bytes / 2 ** 20).toFixed(2)} MB)`}; environment of the unit: ${JSON.stringify(unitEnv)}`,
  );
  const device = `bench-agent-${randomBytes(3).toString('hex')}`;
  const watcher = await mqtt.connectAsync(MQTT, {
    protocolVersion: 5,
    clientId: `pf-bench-watch-${device}`,
    reconnectPeriod: 0,
  });
  let lastState;
  watcher.on('message', (topic, payload) => {
    if (topic === topics.state(device) && payload.length > 0) lastState = JSON.parse(payload);
  });
  await watcher.subscribeAsync(topics.state(device), { qos: 1 });
  const publishManifest = (generation, services) =>
    watcher.publishAsync(
      topics.desired(device),
      JSON.stringify(
        signManifest(
          { device, generation, issuedAt: new Date().toISOString(), services },
          key.privateKeyPem,
        ),
      ),
      { qos: 1, retain: true },
    );
  const waitForState = async (what, test, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (lastState && test(lastState)) return;
      await sleep(20);
    }
    throw new Error(
      `${what}: not reported within ${ms / 1000} s; last state ${JSON.stringify(lastState)}`,
    );
  };
  const configFile = async (name) => {
    const file = join(dir, `${name}.yaml`);
    const stateDir = join(dir, `${name}-state`);
    const indented = key.publicKeyPem.trimEnd().replace(/\n/g, '\n    ');
    await writeFile(
      file,
      `device: ${device}\nbroker:\n  url: ${MQTT}\ncontroller:\n  publicKeys: |\n    ${indented}\n` +
        `stateDir: ${stateDir}\nlogLevel: ${process.env.BENCH_AGENT_LOG ?? 'warn'}\nautoUpdate: { schedule: "off" }\n`,
    );
    return file;
  };
  const rows = [];
  const agentEnv = { ...process.env, NODE_OPTIONS: '', ...unitEnv };
  /** `ENTRY run` on the retained manifest of zero services, idle; its row. */
  const idleRun = async (what, name, entry, env) => {
    await watcher.publishAsync(topics.state(device), '', { qos: 1, retain: true });
    await publishManifest(1, []);
    lastState = undefined;
    const run = spawn(process.execPath, [entry, 'run', '--config', await configFile(name)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env,
    });
    let runErr = '';
    run.stderr.on('data', (d) => (runErr += d));
    const exited = new Promise((resolve) => run.once('exit', resolve));
    try {
      await waitForState(`${what}: generation 1 applied`, (s) => s.generation === 1);
      await sleep(2000);
      rows.push([what, await sample(run.pid, IDLE_SECONDS)]);
    } catch (error) {
      console.log(`${what}: ${error.message}; stderr: ${runErr.trim().slice(-400)}`);
    } finally {
      run.kill('SIGTERM');
      await exited;
    }
  };
  try {
    // 0. Bare Node, no flags.
    const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e3)'], {
      stdio: 'ignore',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    await sleep(2000);
    const bareRow = await sample(bare.pid, IDLE_SECONDS);
    bare.kill('SIGTERM');
    rows.push(['bare Node, no flags, idle', bareRow]);

    // 1. The real `podfleet-agent run`, zero services: as the device runs it, and optionally before.
    if (BEFORE_BIN) {
      await idleRun(
        `before: ${BEFORE_BIN} run, no NODE_OPTIONS, 0 services, idle`,
        'before',
        BEFORE_BIN,
        {
          ...process.env,
          NODE_OPTIONS: '',
        },
      );
    }
    await idleRun(
      `podfleet-agent run (${AGENT_BIN ? 'BENCH_AGENT_BIN' : 'bundle'} + the unit's environment; systemd + Podman driver), 0 services, idle`,
      'run',
      agentBin,
      agentEnv,
    );

    // 2. The same runtime on the in-memory host: idle, apply, no-op reconcile.
    await watcher.publishAsync(topics.state(device), '', { qos: 1, retain: true });
    await publishManifest(1, []);
    lastState = undefined;
    const mem = fork(new URL(import.meta.url).pathname, ['--child', await configFile('mem')], {
      env: agentEnv,
    });
    const inbox = [];
    const waiters = [];
    mem.on('message', (m) => (waiters.length ? waiters.shift()(m) : inbox.push(m)));
    const next = () =>
      new Promise((resolve) => (inbox.length ? resolve(inbox.shift()) : waiters.push(resolve)));
    try {
      await next();
      await waitForState('in-memory agent: generation 1 applied', (s) => s.generation === 1);
      await sleep(2000);
      rows.push(['same agent, in-memory host, 0 services, idle', await sample(mem.pid, IDLE_SECONDS)]); // prettier-ignore
      const before = await proc(mem.pid);
      let peak = before.rss;
      const sampler = setInterval(async () => {
        peak = Math.max(peak, (await proc(mem.pid).catch(() => ({ rss: 0 }))).rss);
      }, 50);
      const began = Date.now();
      await publishManifest(2, [
        {
          name: 'web',
          image: 'registry.example/acme/web:1.0',
          ready: { timeout: 20, settle: 1 },
        },
      ]);
      await waitForState(
        'in-memory agent: generation 2 applied and ready',
        (s) => s.generation === 2 && s.services?.some((x) => x.name === 'web' && x.ready),
      );
      const applyMs = Date.now() - began;
      clearInterval(sampler);
      const after = await proc(mem.pid);
      const cpuMs = ((after.ticks - before.ticks) * 1000) / CLK_TCK;
      rows.push([
        'same agent, in-memory host: apply of 1 service (settle 1 s)',
        {
          seconds: applyMs / 1000,
          rssMean: after.rss,
          rssAtEnd: true,
          rssMax: Math.max(peak, after.rss),
          cpuPercent: (100 * cpuMs) / applyMs,
          cpuMs,
        },
      ]);
      mem.send({ noop: 50 });
      const { times } = await next();
      times.sort((a, b) => a - b);
      const q = (x) => times[Math.min(times.length - 1, Math.floor(x * times.length))];
      console.log(
        `no-op reconcile (the drift check: host snapshot + plan with no step), in-memory host, 50 runs: median ${q(0.5).toFixed(2)} ms, p90 ${q(0.9).toFixed(2)} ms, min ${q(0).toFixed(2)} ms`,
      );
      mem.send({ stop: true });
      await next();
    } finally {
      mem.kill('SIGKILL');
    }

    for (const [what, r] of rows) {
      console.log(
        `${what}: ${r.seconds.toFixed(1)} s, RSS ${r.rssAtEnd ? 'at the end' : 'mean'} ${mb(r.rssMean)} MB max ${mb(r.rssMax)} MB (${(r.rssMean / bareRow.rssMean).toFixed(2)}x bare Node), CPU ${r.cpuPercent.toFixed(2)} % (${r.cpuMs.toFixed(0)} ms)`,
      );
    }
  } finally {
    await watcher.publishAsync(topics.desired(device), '', { qos: 1, retain: true });
    await watcher.publishAsync(topics.state(device), '', { qos: 1, retain: true });
    await watcher.publishAsync(topics.online(device), '', { qos: 1, retain: true });
    await watcher.endAsync();
    await rm(dir, { recursive: true, force: true });
  }
}

/** A unit's Environment= assignments (one NAME=value each, quotes removed) as an object. */
function unitEnvironment(unit) {
  const env = {};
  for (const [, value] of unit.matchAll(/^Environment=(.*)$/gm)) {
    const assignment = value.replace(/^"(.*)"$/, '$1');
    const at = assignment.indexOf('=');
    env[assignment.slice(0, at)] = assignment.slice(at + 1);
  }
  return env;
}

/** RSS (bytes) and CPU ticks (user + system) of a process. */
async function proc(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
  const ticks = Number(stat[11]) + Number(stat[12]);
  return { rss: Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024, ticks };
}

/** Samples a process once a second for `seconds`: mean and max RSS, CPU share. */
async function sample(pid, seconds) {
  const first = await proc(pid);
  const began = Date.now();
  const rss = [first.rss];
  while (Date.now() - began < seconds * 1000) {
    await sleep(1000);
    rss.push((await proc(pid)).rss);
  }
  const last = await proc(pid);
  const elapsedMs = Date.now() - began;
  const cpuMs = ((last.ticks - first.ticks) * 1000) / CLK_TCK;
  return {
    seconds: elapsedMs / 1000,
    rssMean: rss.reduce((a, b) => a + b, 0) / rss.length,
    rssMax: Math.max(...rss),
    cpuPercent: (100 * cpuMs) / elapsedMs,
    cpuMs,
  };
}

function mb(bytes) {
  return (bytes / 2 ** 20).toFixed(1);
}
