/* global fetch */
// Listing devices with their compliance at fleet size: GET /v1/devices (a page of 50, of 500),
// `?compliance=failed` (a scan of the whole fleet for 1% failed devices), `podfleet devices ls`
// (every page) and `podfleet services ls` (the version distribution), median of 5 runs each.
// 10,000 devices written straight into a scratch database, each with a manifest, a state report
// and three events, as a fleet after three rollouts would have; 1% failed the last one.
// Run: npm run bench -- compliance   BENCH_DEVICES (default 10000), BENCH_OTHER_EVENTS (error
// events per device besides the applies, default 0: compliance reads only applies and rollbacks).
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';

const { openApiHarness } = await import('../packages/controller/dist/http/route-testing.js');
const { runCliCaptured } = await import('../packages/controller/dist/cli/testing.js');
const N = Number(process.env.BENCH_DEVICES ?? 10_000);
const V14 = 'registry.example/acme/web:1.4';
const V18 = 'registry.example/acme/web:1.8';
const RUNS = 5;
const OTHER_EVENTS = Number(process.env.BENCH_OTHER_EVENTS ?? 0);

const service = (image, failed) => ({
  name: 'web',
  image,
  imageId: (failed ? 'b' : 'a').repeat(64),
  unit: { active: 'active', sub: 'running', restarts: 0, activeSince: new Date().toISOString() },
  container: { id: 'c'.repeat(64), state: 'running', health: 'none' },
  ready: true,
  health: 'ready',
});

function deviceRow(id, failed) {
  return {
    id,
    labels: { fleet: 'bench', site: `site-${id.length % 7}` },
    online: true,
    lastSeen: new Date(),
    desiredGeneration: 3,
    appliedGeneration: 3,
    desiredManifest: {
      device: id,
      generation: 3,
      services: [{ name: 'web', image: V18, env: { GREETING: 'hello' }, ports: ['8080:8080'] }],
      signature: { alg: 'ed25519', keyId: 'bench', value: 'x'.repeat(88) },
    },
    lastState: {
      device: id,
      generation: 3,
      reportedAt: new Date().toISOString(),
      agent: { version: '0.2.0' },
      host: { podman: '5.4.2', systemd: '257', arch: 'amd64', unitStyle: 'quadlet' },
      services: [service(failed ? V14 : V18, failed)],
    },
    stateReceivedAt: new Date(),
  };
}

function eventsOf(id, failed) {
  const at = new Date();
  const apply = (generation, result) => ({
    id: randomUUID(),
    deviceId: id,
    type: 'apply',
    at,
    payload: {
      type: 'apply',
      generation,
      result,
      services: [{ name: 'web', image: V18, action: 'start' }],
      ...(result === 'failed' ? { failure: { reason: 'start-timeout', journal: [] } } : {}),
    },
  });
  const other = Array.from({ length: OTHER_EVENTS }, () => ({
    id: randomUUID(),
    deviceId: id,
    type: 'error',
    at,
    payload: { type: 'error', message: 'web: connection refused', generation: 3 },
  }));
  return [
    apply(1, 'applied'),
    apply(2, 'applied'),
    apply(3, failed ? 'failed' : 'applied'),
    ...other,
  ];
}

async function median(what, work) {
  const times = [];
  let last;
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    last = await work();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  console.log(
    `${what}: median ${times[RUNS >> 1].toFixed(0)} ms (min ${times[0].toFixed(0)}, max ${times.at(-1).toFixed(0)})`,
  );
  return last;
}

const api = await openApiHarness();
try {
  console.log(
    `compliance listing: ${N} devices, ${3 + OTHER_EVENTS} events each, ${cpus().length} cores (${cpus()[0].model}), Node ${process.version}; ${new Date().toISOString()}`,
  );
  const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
  const ids = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(5, '0')}`);
  const failed = new Set(ids.filter((_, i) => i % 100 === 31));
  for (let i = 0; i < N; i += 1000) {
    const chunk = ids.slice(i, i + 1000);
    await api.prisma.device.createMany({ data: chunk.map((id) => deviceRow(id, failed.has(id))) });
    await api.prisma.deviceEvent.createMany({
      data: chunk.flatMap((id) => eventsOf(id, failed.has(id))),
    });
  }
  await api.prisma.service.create({ data: { name: 'web', revisions: { create: { revision: 1, image: V18, spec: { name: 'web', image: V18 } } } } }); // prettier-ignore
  await api.prisma.$executeRawUnsafe('ANALYZE');
  const get = (path) => async () => {
    const response = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${api.tokens.viewer}` } }); // prettier-ignore
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.json();
  };
  const cli =
    (...argv) =>
    async () => {
      const run = await runCliCaptured([...argv, '--url', url, '--token', api.tokens.viewer]);
      if (run.code !== 0) throw new Error(`${argv.join(' ')}: ${run.stderr}`);
      return run.stdout;
    };
  await median('GET /v1/devices (first page of 50)', get('/v1/devices'));
  await median('GET /v1/devices?limit=500', get('/v1/devices?limit=500'));
  const found = await median(`GET /v1/devices?compliance=failed&limit=500 (scans ${N})`, get('/v1/devices?compliance=failed&limit=500')); // prettier-ignore
  if (found.items.length !== failed.size)
    throw new Error(`found ${found.items.length} failed, expected ${failed.size}`);
  const listed = await median(`podfleet devices ls (all ${N}, pages of 500)`, cli('devices', 'ls'));
  if (listed.trimEnd().split('\n').length !== N + 1)
    throw new Error('devices ls: not every device');
  await median(
    'podfleet devices ls --compliance failed',
    cli('devices', 'ls', '--compliance', 'failed'),
  );
  const services = await median('podfleet services ls', cli('services', 'ls'));
  console.log(services.trimEnd());
} finally {
  await api.close();
}
