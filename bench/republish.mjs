// How long a change that touches 10,000 devices takes to go out: recompute desired state for the
// whole fleet, sign every changed manifest, store it, and publish it retained to Mosquitto.
// Run: npm run bench -- republish   (plain JavaScript on the built dist/, so nothing compiles it)   (needs Postgres on 127.0.0.1:5432 and Mosquitto on :1883)
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { ServiceSpec, generateSigningKey } from '@podfleet/shared';
import { openDatabase } from '../packages/controller/dist/db/client.js';
import { createScratchDatabase } from '../packages/controller/dist/db/testing.js';
import { DesiredSync } from '../packages/controller/dist/desired/sync.js';
import { connectBroker } from '../packages/controller/dist/mqtt/connect.js';
import { mqttManifestPublisher } from '../packages/controller/dist/mqtt/manifest-publisher.js';
import { insertDevices } from './support.mjs';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 10_000);
const MQTT = process.env.BENCH_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

const scratch = await createScratchDatabase();
const db = await openDatabase({ DATABASE_URL: scratch.url });
const broker = await connectBroker(MQTT, { clientId: `pf-bench-${randomUUID()}` });
try {
  await db.migrate();
  const prefix = `bench-${randomUUID().slice(0, 6)}`;
  await insertDevices(
    db.prisma,
    Array.from({ length: DEVICES }, (_, i) => ({
      id: `${prefix}-${i}`,
      labels: { site: i % 2 ? 'berlin' : 'paris' },
    })),
  );
  await db.prisma.service.create({ data: { name: 'web' } });
  for (const revision of [1, 2]) {
    const spec = ServiceSpec.parse({
      name: 'web',
      image: `registry.example/acme/web:${revision}.0`,
    });
    await db.prisma.serviceRevision.create({
      data: { serviceName: 'web', revision, spec, image: spec.image },
    });
  }
  await db.prisma.group.create({ data: { name: 'all', selector: 'site in (berlin,paris)' } });
  await db.prisma.assignment.create({
    data: { groupName: 'all', serviceName: 'web', revision: 1 },
  });
  const sync = new DesiredSync({
    db,
    publisher: mqttManifestPublisher(broker.client),
    key: generateSigningKey(),
    log: pino({ level: 'warn' }),
  });

  const time = async (label, work) => {
    const start = performance.now();
    const result = await work();
    const seconds = (performance.now() - start) / 1000;
    // A recompute's result lists every device it published to: the count says enough.
    const shown = typeof result === 'object' ? { ...result, publishedDevices: undefined } : result;
    console.log(`${label.padEnd(52)} ${seconds.toFixed(2)} s  ${JSON.stringify(shown)}`);
    return seconds;
  };
  console.log(
    `podfleet republish benchmark: ${DEVICES} devices, Postgres + Mosquitto, ${new Date().toISOString()}`,
  );
  await time('first manifests (every device, generation 1)', () => sync.recompute());
  await time('no change (every device compared, none published)', () => sync.recompute());
  await db.prisma.assignment.update({
    where: { groupName_serviceName: { groupName: 'all', serviceName: 'web' } },
    data: { revision: 2 },
  });
  await time('new revision for every device (generation 2)', () => sync.recompute());
  await time('republish all stored manifests (controller start)', () => sync.republishAll());
  for (let i = 0; i < DEVICES; i++)
    await mqttManifestPublisher(broker.client).clear(`${prefix}-${i}`);
} finally {
  await broker.client.endAsync();
  await db.close();
  await scratch.drop();
}
