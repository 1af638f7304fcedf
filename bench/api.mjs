/* global URL, fetch, setTimeout */
// Controller API under load: p50/p99 of GET /v1/rollouts/:id, its paged device list and GET
// /v1/devices (first page and a 500-device page) with wrk, for a fleet of N simulated devices (child processes of
// bench/fanout.mjs), first idle, then while a rollout (batches of 5%) runs.
// Run: npm run bench -- api   (needs wrk: apt-get install wrk)   BENCH_DEVICES (default 10000),
// BENCH_PROCS (3), BENCH_WRK_SECONDS (8), BENCH_WRK_CONNECTIONS (10).
import { execFile, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { promisify } from 'node:util';
import { insertDevices, simFleet } from './support.mjs';

const h = await import('../packages/controller/dist/rollouts/e2e/harness.js');
const N = Number(process.env.BENCH_DEVICES ?? 10_000);
const PROCS = Number(process.env.BENCH_PROCS ?? 3);
const SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_WRK_CONNECTIONS ?? 10);
const V1 = 'registry.example/acme/web:1.0';
const V2 = 'registry.example/acme/web:2.0';
const LUA = new URL('./wrk-auth.lua', import.meta.url).pathname;
const FANOUT = new URL('./fanout.mjs', import.meta.url).pathname;
const run = promisify(execFile);

const cleanups = new h.Cleanups();
const children = [];
cleanups.add(async () => {
  for (const child of children) child.kill('SIGKILL');
});

/** wrk's latency distribution: p50, p99 (ms) and requests/s. */
async function wrk(url, token, connections = CONNECTIONS) {
  const { stdout } = await run(
    'wrk',
    ['-t1', `-c${connections}`, `-d${SECONDS}s`, '--latency', '-s', LUA, url],
    { env: { ...process.env, PF_TOKEN: token } },
  );
  const ms = (label) => {
    const match = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)`, 'm').exec(stdout);
    if (!match) return NaN;
    return Number(match[1]) * { us: 0.001, ms: 1, s: 1000 }[match[2]];
  };
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  return { p50: ms('50%'), p99: ms('99%'), rps, non2xx };
}

try {
  console.log(
    `podfleet API benchmark: ${N} devices in ${PROCS} sim processes, controller in this process, wrk -t1 -c${CONNECTIONS} -d${SECONDS}s; ${cpus().length} cores (${cpus()[0].model}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${new Date().toISOString()}`,
  );
  const site = await h.controllerSite(cleanups);
  site.env.LOG_LEVEL = 'warn';
  const e = await h.startE2eController(site);
  cleanups.add(() => e.controller.close());
  const prisma = e.controller.db.prisma;
  const base = `bench-api-${randomBytes(3).toString('hex')}`;
  const { ids, prefixOf, share } = simFleet(h, cleanups, base, N, PROCS);
  // Devices straight into the table (registering 10,000 through the CLI takes minutes), the rest
  // through the CLI as an operator would.
  await insertDevices(
    prisma,
    ids.map((id) => ({ id, labels: { fleet: base } })),
  );
  await h.mustRun(e.cli('groups', 'create', 'edge', '--selector', `fleet=${base}`, '--priority', '1'), 'groups create'); // prettier-ignore
  const { writeFile } = await import('node:fs/promises');
  await writeFile(`${site.dataDir}/web.yaml`, `name: web\nimage: ${V1}\nready: { timeout: 20s, settle: 1s }\n`); // prettier-ignore
  await h.mustRun(e.cli('services', 'apply', '-f', `${site.dataDir}/web.yaml`), 'services apply');
  await h.mustRun(e.cli('assign', 'edge', 'web'), 'assign');
  let t = performance.now();
  for (let p = 0; p < PROCS; p++) {
    const n = Math.min(share, N - p * share);
    const child = fork(FANOUT, ['--child', 'sim', prefixOf(p), String(n), e.publicKeyFile]);
    children.push(child);
    await new Promise((resolve) => child.once('message', resolve));
  }
  await h.waitUntilAllRun(prisma, ids, V1, 300_000);
  console.log(`setup: every device runs V1 after ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const devicesUrl = `${e.controller.url}/v1/devices`;
  const pageUrl = `${e.controller.url}/v1/devices?limit=500`;
  const rows = [];
  // The controller's event-loop delay over each window: how long a ready request waited for the
  // loop (engine passes, recomputes and ingest run in the same process).
  const { monitorEventLoopDelay } = await import('node:perf_hooks');
  const measure = async (phase, label, url) => {
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    const r = await wrk(url, e.token);
    loop.disable();
    rows.push({ phase, label, ...r });
    console.log(
      `${phase.padEnd(16)} ${label.padEnd(32)} p50 ${r.p50.toFixed(1).padStart(7)} ms  p99 ${r.p99.toFixed(1).padStart(7)} ms  ${r.rps.toFixed(0).padStart(6)} req/s${r.non2xx ? `  non-2xx ${r.non2xx}` : ''}  (event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms, max ${(loop.max / 1e6).toFixed(0)} ms)`,
    );
  };

  // A finished rollout to read while idle: a rollout start with no change would be refused, so the
  // idle figures for /v1/rollouts/:id come from the rollout itself before its devices move
  // (measured right after start, below); idle covers the device list.
  await measure('idle', 'GET /v1/devices', devicesUrl);
  await measure('idle', 'GET /v1/devices?limit=500', pageUrl);

  const started = await h.mustRun(
    e.cli('rollout', 'start', 'web', V2, '--group', 'edge', '--batch-size', '5%', '--health-timeout', '120s', '--json'), // prettier-ignore
    'rollout start',
  );
  const id = JSON.parse(started.stdout).id;
  const rolloutUrl = `${e.controller.url}/v1/rollouts/${id}`;
  const states = [];
  const during = async (label, url) => {
    await measure('during rollout', label, url);
    const status = await e.controller.rollouts.status(id);
    states.push(h.describeRollout(status));
    console.log(`  rollout after: ${h.describeRollout(status)}`);
  };
  // BENCH_PROFILE=FILE: a CPU profile of this process (the controller) over the first measurement.
  let profiler;
  if (process.env.BENCH_PROFILE) {
    const { Session } = await import('node:inspector/promises');
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
  }
  await during('GET /v1/rollouts/:id', rolloutUrl);
  if (profiler) {
    const { profile } = await profiler.post('Profiler.stop');
    (await import('node:fs')).writeFileSync(process.env.BENCH_PROFILE, JSON.stringify(profile));
    profiler.disconnect();
  }
  {
    // One connection: the time of one request, without queueing behind nine others.
    const r = await wrk(rolloutUrl, e.token, 1);
    console.log(
      `during rollout   GET /v1/rollouts/:id (-c1)          p50 ${r.p50.toFixed(1).padStart(7)} ms  p99 ${r.p99.toFixed(1).padStart(7)} ms  ${r.rps.toFixed(0).padStart(6)} req/s`,
    );
  }
  await during('GET /v1/devices', devicesUrl);
  await during('GET /v1/rollouts/:id/devices (50)', `${rolloutUrl}/devices`);
  await during('GET /v1/rollouts/:id', rolloutUrl);
  const bytes = (await fetch(rolloutUrl, { headers: { authorization: `Bearer ${e.token}` } }).then((r) => r.text())).length; // prettier-ignore
  console.log(`GET /v1/rollouts/:id body: ${bytes} bytes`);
  const end = await h.waitForRollout(e.controller, id, ['succeeded', 'failed', 'rolled_back', 'paused'], 300_000).catch((error) => error.message); // prettier-ignore
  console.log(`rollout: ${typeof end === 'string' ? end : h.describeRollout(end)}`);
} finally {
  for (const child of children) child.send({ stop: true });
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await cleanups.run();
}
