import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ServiceSpec,
  endorseKey,
  followKeyChain,
  generateSigningKey,
  topics,
  verifyManifest,
  type DeviceManifest,
} from '@podfleet/shared';
import { openDatabase, type Database } from '../db/client.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { connectBroker } from '../mqtt/connect.js';
import { mqttManifestPublisher } from '../mqtt/manifest-publisher.js';
import type { RolloutOverrides } from './image-rule.js';
import { contentHash } from './manifest.js';
import { DesiredSync, type ManifestPublisher } from './sync.js';

const MOSQUITTO = process.env.PODFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const key = generateSigningKey();
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const log = pino({ level: 'silent' });

/** Records what was published instead of sending it. */
function recorder(): ManifestPublisher & { published: DeviceManifest[] } {
  const published: DeviceManifest[] = [];
  return { published, publish: async (m) => void published.push(m), clear: async () => undefined };
}

describe('desired-state sync on Postgres', () => {
  let scratch: ScratchDatabase;
  let db: Database;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    db = await openDatabase({ DATABASE_URL: scratch.url });
    await db.migrate();
  });
  afterAll(async () => {
    await db.close();
    await scratch.drop();
  });
  beforeEach(async () => {
    await db.prisma.$executeRawUnsafe(
      'TRUNCATE devices, groups, group_members, services, service_revisions, assignments, pins CASCADE',
    );
  });

  async function fleet() {
    await db.prisma.device.createMany({
      data: [
        { id: 'ber-1', labels: { site: 'berlin', tier: 'edge' } },
        { id: 'ber-2', labels: { site: 'berlin', tier: 'gw' } },
        { id: 'par-1', labels: { site: 'paris', tier: 'edge' } },
      ],
    });
    const spec = ServiceSpec.parse({
      name: 'web',
      image: 'registry.example/acme/web:1.4',
      autoUpdate: 'registry',
    });
    await db.prisma.service.create({ data: { name: 'web' } });
    await db.prisma.serviceRevision.create({
      data: { serviceName: 'web', revision: 1, spec, image: spec.image },
    });
    await db.prisma.group.create({
      data: { name: 'berlin', selector: 'site=berlin', priority: 10 },
    });
    await db.prisma.group.create({
      data: { name: 'edge', selector: 'tier in (edge)', priority: 5 },
    });
    await db.prisma.assignment.create({
      data: { groupName: 'berlin', serviceName: 'web', revision: 1 },
    });
  }

  const stored = async (id: string) => {
    const device = await db.prisma.device.findUniqueOrThrow({ where: { id } });
    return {
      generation: device.desiredGeneration,
      manifest: device.desiredManifest as unknown as DeviceManifest | null,
    };
  };

  it('gives every device a signed manifest, generation 1, and publishes it', async () => {
    await fleet();
    const publisher = recorder();
    const sync = new DesiredSync({ db, publisher, key, log });
    expect(await sync.recompute()).toMatchObject({ devices: 3, published: 3, conflicts: 0 });
    expect(publisher.published.map((m) => [m.device, m.generation, m.services.length])).toEqual([
      ['ber-1', 1, 1],
      ['ber-2', 1, 1],
      ['par-1', 1, 0],
    ]);
    const { generation, manifest } = await stored('ber-1');
    expect(generation).toBe(1);
    expect(verifyManifest(manifest, [key.publicKeyPem]).ok).toBe(true);
    expect(manifest!.services.map((s) => s.image)).toEqual(['registry.example/acme/web:1.4']);
    // A device in no group runs nothing, and is told so.
    expect((await stored('par-1')).manifest!.services).toEqual([]);
  });

  it('bumps the generation only of devices whose manifest changed, and only once', async () => {
    await fleet();
    const publisher = recorder();
    const sync = new DesiredSync({ db, publisher, key, log });
    await sync.recompute();
    expect(await sync.recompute()).toEqual({
      devices: 3,
      published: 0,
      conflicts: 0,
      publishedDevices: [],
    });
    await db.prisma.pin.create({
      data: {
        groupName: 'edge',
        serviceName: 'web',
        image: `registry.example/acme/web@${digest('e')}`,
      },
    });
    await sync.recompute();
    expect(publisher.published.slice(3).map((m) => [m.device, m.generation])).toEqual([
      ['ber-1', 2],
    ]);
    const web = (await stored('ber-1')).manifest!.services[0]!;
    expect(web.image).toBe(`registry.example/acme/web@${digest('e')}`);
    expect(web.autoUpdate).toBe('off');
    expect((await stored('ber-2')).generation).toBe(1);
  });

  it('lets a device pin beat a group pin', async () => {
    await fleet();
    await db.prisma.pin.create({
      data: {
        groupName: 'berlin',
        serviceName: 'web',
        image: `registry.example/acme/web@${digest('a')}`,
      },
    });
    await db.prisma.pin.create({
      data: {
        deviceId: 'ber-2',
        serviceName: 'web',
        image: `registry.example/acme/web@${digest('b')}`,
      },
    });
    await new DesiredSync({ db, publisher: recorder(), key, log }).recompute();
    expect((await stored('ber-1')).manifest!.services[0]!.image).toBe(
      `registry.example/acme/web@${digest('a')}`,
    );
    expect((await stored('ber-2')).manifest!.services[0]!.image).toBe(
      `registry.example/acme/web@${digest('b')}`,
    );
  });

  it('keeps the running spec of a service whose assignment conflicts, and explains the conflict', async () => {
    await fleet();
    const sync = new DesiredSync({ db, publisher: recorder(), key, log });
    await sync.recompute();
    const spec2 = ServiceSpec.parse({ name: 'web', image: 'registry.example/acme/web:2.0' });
    await db.prisma.serviceRevision.create({
      data: { serviceName: 'web', revision: 2, spec: spec2, image: spec2.image },
    });
    await db.prisma.group.create({
      data: { name: 'berlin-gw', selector: 'site=berlin,tier=gw', priority: 10 },
    });
    await db.prisma.assignment.create({
      data: { groupName: 'berlin-gw', serviceName: 'web', revision: 2 },
    });
    expect(await sync.recompute()).toMatchObject({ published: 0, conflicts: 1 });
    expect((await stored('ber-2')).manifest!.services[0]!.image).toBe(
      'registry.example/acme/web:1.4',
    );
    const why = await sync.explain('ber-2');
    expect(why!.conflicts.map((c) => [c.service, c.kind])).toEqual([['web', 'revision']]);
  });

  it('never hands out one generation twice when two controllers recompute at once', async () => {
    await fleet();
    const a = new DesiredSync({ db, publisher: recorder(), key, log });
    const b = new DesiredSync({ db, publisher: recorder(), key, log });
    await a.recompute();
    await db.prisma.device.update({
      where: { id: 'ber-1' },
      data: { labels: { site: 'berlin', tier: 'edge', x: '1' } },
    });
    await db.prisma.pin.create({
      data: {
        deviceId: 'ber-1',
        serviceName: 'web',
        image: `registry.example/acme/web@${digest('c')}`,
      },
    });
    const results = await Promise.all([a.recompute(), b.recompute()]);
    expect(results.map((r) => r!.published).sort()).toEqual([0, 1]);
    expect((await stored('ber-1')).generation).toBe(2);
  });

  it('continues from the generation a device reports when the stored manifest is gone', async () => {
    await fleet();
    await db.prisma.device.update({ where: { id: 'ber-1' }, data: { appliedGeneration: 41 } });
    await new DesiredSync({ db, publisher: recorder(), key, log }).recompute();
    expect((await stored('ber-1')).generation).toBe(42);
  });

  it('publishes retained manifests that a device connecting later receives and can verify', async () => {
    await fleet();
    const id = `dev-${randomUUID().slice(0, 8)}`;
    await db.prisma.device.create({ data: { id, labels: { site: 'berlin' } } });
    const controller = await connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` });
    const sync = new DesiredSync({
      db,
      publisher: mqttManifestPublisher(controller.client),
      key,
      log,
    });
    await sync.recompute();
    const device = await connectBroker(MOSQUITTO, { clientId: id });
    try {
      const received = new Promise<string>((resolve) =>
        device.client.once('message', (_t, p) => resolve(p.toString())),
      );
      await device.client.subscribeAsync(topics.desired(id), { qos: 1 });
      const manifest = JSON.parse(await received);
      expect(verifyManifest(manifest, [key.publicKeyPem])).toMatchObject({ ok: true });
      expect(manifest.device).toBe(id);
    } finally {
      await mqttManifestPublisher(controller.client).clear(id);
      await Promise.all([controller.client.endAsync(), device.client.endAsync()]);
    }
  });

  it('does not publish a manifest the broker would refuse, names it, and publishes the others', async () => {
    await fleet();
    const computed = recorder();
    await new DesiredSync({ db, publisher: computed, key, log }).recompute();
    // Ids of their own: other tests leave retained manifests of the fleet's devices.
    const [big, small] = computed.published.map((manifest) => ({
      ...manifest,
      device: `pf-test-${randomUUID().slice(0, 8)}`,
    }));
    const controller = await connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` });
    const device = await connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` });
    const errors: string[] = [];
    const publisher = mqttManifestPublisher(controller.client, {
      maxBytes: 4000,
      log: { error: (_fields: object, message: string) => errors.push(message) },
    });
    try {
      const received: string[] = [];
      device.client.on('message', (topic) => received.push(topic));
      await device.client.subscribeAsync(
        [topics.desired(big!.device), topics.desired(small!.device)],
        { qos: 1 },
      );
      await publisher.publish({ ...big!, padding: 'x'.repeat(5000) } as DeviceManifest);
      await publisher.publish(small!);
      for (let waited = 0; received.length === 0 && waited < 5000; waited += 20)
        await new Promise((resolve) => setTimeout(resolve, 20));
      expect(received).toEqual([topics.desired(small!.device)]);
      expect(errors).toEqual([
        expect.stringMatching(
          new RegExp(
            `^manifest of ${big!.device} not published: \\d+ bytes, the broker takes at most 4000$`,
          ),
        ),
      ]);
      expect(controller.client.connected).toBe(true);
    } finally {
      await publisher.clear(small!.device);
      await Promise.all([controller.client.endAsync(), device.client.endAsync()]);
    }
  });

  it('stores each manifest’s content hash, and hashes a manifest stored without one once, keeping its generation', async () => {
    await fleet();
    const sync = new DesiredSync({ db, publisher: recorder(), key, log });
    await sync.recompute();
    const hashOf = async (id: string) =>
      (await db.prisma.device.findUniqueOrThrow({ where: { id } })).desiredHash;
    const { manifest } = await stored('ber-1');
    expect(await hashOf('ber-1')).toBe(contentHash('ber-1', manifest!.services));
    // As a row written before the column existed.
    await db.prisma.device.update({ where: { id: 'ber-1' }, data: { desiredHash: null } });
    expect(await sync.recompute()).toMatchObject({ published: 0 });
    expect(await hashOf('ber-1')).toBe(contentHash('ber-1', manifest!.services));
    expect((await stored('ber-1')).generation).toBe(1);
  });

  it('signs and publishes only the devices whose inputs changed: a rollout’s switched devices', async () => {
    await fleet();
    let overrides: RolloutOverrides = new Map();
    const publisher = recorder();
    const sync = new DesiredSync({ db, publisher, key, log, rollouts: async () => overrides });
    await sync.recompute();
    overrides = new Map([['ber-2', new Map([['web', 'registry.example/acme/web:1.5']])]]);
    expect(await sync.recompute()).toMatchObject({ devices: 3, published: 1 });
    expect(publisher.published.slice(3).map((m) => [m.device, m.generation])).toEqual([
      ['ber-2', 2],
    ]);
    expect((await stored('ber-2')).manifest!.services[0]!.image).toBe(
      'registry.example/acme/web:1.5',
    );
    expect((await stored('ber-1')).generation).toBe(1);
  });

  it('signs with a rotated key and sends its endorsement chain, which a device trusting the old key follows', async () => {
    await fleet();
    const next = generateSigningKey();
    const rotated = { ...next, endorsements: [endorseKey(next.publicKeyPem, key.privateKeyPem)] };
    const publisher = recorder();
    await new DesiredSync({ db, publisher, key: rotated, log }).recompute();
    const manifest = publisher.published.find((m) => m.device === 'ber-1')!;
    expect(manifest.keyChain).toEqual(rotated.endorsements);
    const trusted = followKeyChain([key.publicKeyPem], manifest.keyChain ?? []);
    expect(trusted).toEqual([rotated.endorsements[0]!.publicKey]);
    expect(verifyManifest(manifest, trusted).ok).toBe(true);
  });

  it('debounces changes into one recompute', async () => {
    await fleet();
    const publisher = recorder();
    const sync = new DesiredSync({ db, publisher, key, log, debounceMs: 20 });
    for (let i = 0; i < 5; i++) sync.changed(`change ${i}`);
    await sync.settled();
    expect(publisher.published).toHaveLength(3);
  });
});
