/* global URL, setTimeout */
// What several benchmarks share: a private Mosquitto, and the event-publisher child process.
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';

/** Mosquitto with bench/mosquitto-unbounded.conf's settings, on a free loopback port. */
export async function privateBroker() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  const dir = mkdtempSync(join(tmpdir(), 'pf-bench-mosquitto-'));
  const config = readFileSync(new URL('mosquitto-unbounded.conf', import.meta.url), 'utf8').replace(
    /^listener \d+ /m,
    `listener ${port} `,
  );
  writeFileSync(join(dir, 'mosquitto.conf'), config);
  const child = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const open = await new Promise((resolve) => {
      const probe = createServer().listen(port, '127.0.0.1');
      probe.once('listening', () => probe.close(() => resolve(false)));
      probe.once('error', () => resolve(true));
    });
    if (open) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Devices straight into the table, in slices one after the other: Prisma splits one createMany of
 * 10,000 rows into statements it sends at once on one connection (pg's deprecation warning
 * "client.query() while executing").
 */
export async function insertDevices(prisma, devices) {
  for (let i = 0; i < devices.length; i += 5000) {
    await prisma.device.createMany({ data: devices.slice(i, i + 5000) });
  }
}

/**
 * The publisher child (`--publisher PREFIX DEVICES FROM COUNT`): connects, says `ready`, waits for
 * the go message, publishes its share of `error` events (QoS 1, 1,000 in flight), and reports
 * `done` with the seconds it took.
 */
export async function runPublisher(mqttUrl, argv) {
  const [prefix, devices, from, count] = argv;
  const client = await mqtt.connectAsync(mqttUrl, { clientId: `pf-bench-pub-${randomUUID()}` });
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

/**
 * The ids of N simulated devices run by PROCS `podfleet-agent sim` processes (prefix BASE-pP each,
 * h = the e2e harness), and a cleanup that clears what they left retained on the broker.
 */
export function simFleet(h, cleanups, base, n, procs) {
  const prefixOf = (p) => `${base}-p${p}`;
  const share = Math.ceil(n / procs);
  const ids = [];
  for (let p = 0; p < procs; p++)
    ids.push(...h.simIds(prefixOf(p), Math.min(share, n - p * share)));
  // A busy broker can time out the clearing client's CONNACK: try again, a bounded number of times.
  cleanups.add(async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await h.clearRetained(ids);
      } catch (error) {
        if (attempt === 3) throw error;
      }
    }
  });
  return { ids, prefixOf, share };
}
