import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ServiceSpec,
  generateSigningKey,
  type DeviceEvent,
  type DeviceManifest,
  type StateReport,
} from '@podfleet/shared';
import { openDatabase, type Database } from '../db/client.js';
import { pgSession } from '../db/session.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { DesiredSync } from '../desired/sync.js';
import { storeBatch } from '../ingest/store.js';
import { ImageResolveError } from './image-digest.js';
import { RolloutEngine } from './engine.js';
import { loadRolloutOverrides } from './overrides.js';
import pg from 'pg';

const log = pino({ level: 'silent' });
const key = generateSigningKey();
const V1 = 'registry.example/acme/web:1';
// Report times only grow: ingest ignores a state report older than the one it has.
let reportClock = Date.now();
const V2 = `registry.example/acme/web@sha256:${'2'.repeat(64)}`;

describe('rollout engine on Postgres with a simulated fleet', () => {
  let scratch: ScratchDatabase;
  let db: Database;
  let pool: pg.Pool;
  let clock = 0;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    db = await openDatabase({ DATABASE_URL: scratch.url });
    await db.migrate();
    pool = new pg.Pool({ connectionString: scratch.url, max: 2 });
  });
  afterAll(async () => {
    await pool.end();
    await db.close();
    await scratch.drop();
  });
  beforeEach(async () => {
    await db.prisma.$executeRawUnsafe(
      'TRUNCATE devices, groups, services, rollouts, device_events, audit_log CASCADE',
    );
    clock = 1_000_000;
  });

  /** N devices in group edge (site=berlin for the first half), running web at V1. */
  async function fleet(n: number) {
    await db.prisma.device.createMany({
      data: Array.from({ length: n }, (_, i) => ({
        id: `d${String(i).padStart(3, '0')}`,
        labels: { site: i < n / 2 ? 'berlin' : 'paris' },
        online: true,
      })),
    });
    const spec = ServiceSpec.parse({ name: 'web', image: V1 });
    await db.prisma.service.create({ data: { name: 'web' } });
    await db.prisma.serviceRevision.create({
      data: { serviceName: 'web', revision: 1, spec, image: V1 },
    });
    await db.prisma.group.create({
      data: { name: 'edge', selector: 'site in (berlin,paris)', priority: 1 },
    });
    await db.prisma.assignment.create({
      data: { groupName: 'edge', serviceName: 'web', revision: 1 },
    });
  }

  function services(resolveImage?: (image: string) => Promise<string>): {
    sync: DesiredSync;
    engine: RolloutEngine;
  } {
    const sync = new DesiredSync({
      db,
      publisher: { publish: async () => undefined, clear: async () => undefined },
      key,
      log,
      rollouts: loadRolloutOverrides,
    });
    const engine = new RolloutEngine({
      db,
      sync,
      log,
      now: () => clock,
      ...(resolveImage ? { resolveImage } : {}),
    });
    return { sync, engine };
  }

  /**
   * Every online device applies its desired manifest, as an agent would, and reports through the
   * real ingest store: images in `bad` never become ready and are rolled back with an event.
   */
  async function devicesConverge(bad: Set<string> = new Set(), offline: Set<string> = new Set()) {
    const devices = await db.prisma.device.findMany();
    const states: StateReport[] = [];
    const events: DeviceEvent[] = [];
    for (const device of devices) {
      if (offline.has(device.id)) continue;
      const manifest = device.desiredManifest as unknown as DeviceManifest | null;
      if (!manifest || manifest.generation <= device.appliedGeneration) continue;
      const previous =
        (device.lastState as StateReport | null)?.services.find((s) => s.name === 'web')?.image ??
        V1;
      const wanted = manifest.services.find((s) => s.name === 'web')?.image;
      const fails = wanted !== undefined && bad.has(device.id) && wanted !== V1;
      const running = fails ? previous : wanted;
      if (fails) {
        events.push({
          id: randomUUID(),
          device: device.id,
          at: new Date().toISOString(),
          type: 'rollback',
          service: 'web',
          generation: manifest.generation,
          trigger: 'apply',
          fromImage: wanted!,
          toImage: previous,
          reason: 'web: not ready within 60s',
          restored: true,
        });
      }
      states.push({
        device: device.id,
        generation: manifest.generation,
        reportedAt: new Date(reportClock++).toISOString(),
        agent: { version: 'test' },
        host: { podman: '5.4.2', systemd: '257', arch: 'x86_64', unitStyle: 'quadlet' },
        services: running
          ? [
              {
                name: 'web',
                image: running,
                unit: { active: 'active', sub: 'running', restarts: 0 },
                ready: true,
              },
            ]
          : [],
      });
    }
    const client = await pool.connect();
    try {
      await storeBatch(pgSession(client), {
        states: states.map((report) => ({
          report,
          receivedAt: new Date(Date.parse(report.reportedAt)),
        })),
        events: events.map((event) => ({ event, receivedAt: new Date() })),
        online: [],
      });
    } finally {
      client.release();
    }
  }

  async function runUntilDone(engine: RolloutEngine, id: string, bad?: Set<string>, steps = 40) {
    for (let i = 0; i < steps; i++) {
      await engine.pass();
      await devicesConverge(bad);
      clock += 1000;
      const status = await engine.status(id);
      if (['succeeded', 'rolled_back', 'aborted', 'paused'].includes(status!.state)) return status!;
    }
    return (await engine.status(id))!;
  }

  it('rolls a new image out batch by batch, then makes it the group’s assignment', async () => {
    await fleet(10);
    const { sync, engine } = services();
    await sync.recompute();
    await devicesConverge();
    const started = await engine.start(
      {
        service: 'web',
        image: V2,
        targets: { groups: ['edge'] },
        strategy: { canary: 2, batchSize: 4 },
      },
      'ops',
    );
    expect(started.batches.map((b) => [b.kind, b.total])).toEqual([
      ['canary', 2],
      ['batch', 4],
      ['batch', 4],
    ]);
    const done = await runUntilDone(engine, started.id);
    expect(done.state).toBe('succeeded');
    expect(done.counts).toMatchObject({ succeeded: 10, failed: 0, total: 10 });
    const assignment = await db.prisma.assignment.findUniqueOrThrow({
      where: { groupName_serviceName: { groupName: 'edge', serviceName: 'web' } },
    });
    expect(assignment.revision).toBe(2);
    const revision = await db.prisma.serviceRevision.findUniqueOrThrow({
      where: { serviceName_revision: { serviceName: 'web', revision: 2 } },
    });
    expect(revision.image).toBe(V2);
    // Absorbed: the manifests now come from the revision, and nothing changes on a recompute.
    expect((await sync.recompute())!.published).toBe(0);
  });

  it('aborts and rolls back every updated device when the canary fails', async () => {
    await fleet(6);
    const { sync, engine } = services();
    await sync.recompute();
    await devicesConverge();
    const started = await engine.start(
      {
        service: 'web',
        image: V2,
        targets: { groups: ['edge'] },
        strategy: { canary: 2, batchSize: 2 },
      },
      'ops',
    );
    const canary = (await engine.devices(started.id, { batch: 0, limit: 10 }))!.map((d) => d.id);
    const done = await runUntilDone(engine, started.id, new Set([canary[1]!]));
    expect(done.state).toBe('rolled_back');
    expect(done.reason).toContain('rolling back: batch 0: 1 of 2 devices failed');
    const batch0 = (await engine.devices(started.id, { batch: 0, limit: 10 }))!;
    expect(batch0.map((d) => [d.id, d.state, d.reason])).toEqual([
      [canary[0], 'reverted', 'rolled back'],
      [canary[1], 'failed', 'web: not ready within 60s'],
    ]);
    expect(done.counts.pending).toBe(4);
    const images = (await db.prisma.device.findMany()).map(
      (d) => (d.desiredManifest as unknown as DeviceManifest).services[0]!.image,
    );
    expect(new Set(images)).toEqual(new Set([V1]));
  });

  it('pauses and resumes on an operator’s word, and refuses a second rollout of the service meanwhile', async () => {
    await fleet(4);
    const { sync, engine } = services();
    await sync.recompute();
    await devicesConverge();
    const started = await engine.start(
      { service: 'web', image: V2, targets: { groups: ['edge'] }, strategy: { batchSize: 2 } },
      'ops',
    );
    await engine.pass();
    await engine.operate(started.id, 'pause', 'alice');
    await devicesConverge();
    await engine.pass();
    clock += 10_000;
    await engine.pass();
    let status = (await engine.status(started.id))!;
    expect(status).toMatchObject({ state: 'paused', reason: 'paused by alice', currentBatch: 0 });
    expect(status.counts.succeeded).toBe(2);
    await expect(
      engine.start({ service: 'web', image: V2, targets: { groups: ['edge'] } }, 'bob'),
    ).rejects.toThrow(/is paused; finish or abort it first/);
    await engine.operate(started.id, 'resume', 'alice');
    status = await runUntilDone(engine, started.id);
    expect(status.state).toBe('succeeded');
    const audit = await db.prisma.auditEntry.findMany({
      where: { target: `rollout/${started.id}` },
      orderBy: { id: 'asc' },
    });
    expect(audit.map((a) => [a.actor, a.action])).toEqual([
      ['ops', 'rollout.start'],
      ['alice', 'rollout.pause'],
      ['alice', 'rollout.resume'],
    ]);
  });

  it('remembers which failures a resume accepted: a failure in a later batch still fails that batch', async () => {
    await fleet(4);
    const { sync, engine } = services();
    await sync.recompute();
    await devicesConverge();
    const started = await engine.start(
      {
        service: 'web',
        image: V2,
        targets: { groups: ['edge'] },
        strategy: {
          batchSize: 2,
          autoRollback: false,
          policy: { bake: '0s', successThreshold: '100%' },
        },
      },
      'ops',
    );
    const inBatch = async (batch: number) =>
      (await engine.devices(started.id, { batch, limit: 10 }))!.map((d) => d.id);
    const [first] = await inBatch(0);
    const [second] = await inBatch(1);
    let status = await runUntilDone(engine, started.id, new Set([first!]));
    expect(status).toMatchObject({ state: 'paused', currentBatch: 0 });
    await engine.operate(started.id, 'resume', 'alice');
    const accepted = async () =>
      (
        await db.prisma.rolloutDevice.findMany({
          where: { rolloutId: started.id, acceptedFailure: true },
        })
      ).map((d) => d.deviceId);
    expect(await accepted()).toEqual([first]);
    status = await runUntilDone(engine, started.id, new Set([first!, second!]));
    expect(status).toMatchObject({ state: 'paused', currentBatch: 1 });
    expect(status.reason).toContain('batch 1: 1 of 2 devices failed');
    expect(status.counts.failed).toBe(2);
    expect(await accepted()).toEqual([first]);
    expect(status.failures.map((d) => [d.id, d.accepted ?? false])).toEqual([
      [first, true],
      [second, false],
    ]);
    const resumed = await db.prisma.auditEntry.findFirstOrThrow({
      where: { target: `rollout/${started.id}`, action: 'rollout.resume' },
    });
    expect(resumed.details).toEqual({ acceptedFailures: 1 });
  });

  it('carries on after the controller restarts mid-rollout, and two controllers never step one rollout twice', async () => {
    await fleet(8);
    const first = services();
    await first.sync.recompute();
    await devicesConverge();
    const started = await first.engine.start(
      { service: 'web', image: V2, targets: { groups: ['edge'] }, strategy: { batchSize: 2 } },
      'ops',
    );
    await first.engine.pass();
    await devicesConverge();
    await first.engine.close();
    // New controller processes: only what Postgres holds carries over.
    const a = services();
    const b = services();
    const lines: string[] = [];
    for (const engine of [a.engine, b.engine])
      engine.events.on('happening', (_id: string, line: string) => lines.push(line));
    for (let i = 0; i < 30; i++) {
      await Promise.all([a.engine.pass(), b.engine.pass()]);
      await devicesConverge();
      clock += 1000;
    }
    const done = (await a.engine.status(started.id))!;
    expect(done.state).toBe('succeeded');
    expect(done.counts.succeeded).toBe(8);
    for (const batch of [1, 2, 3])
      expect(lines.filter((l) => l === `batch ${batch} started: 2 devices`)).toHaveLength(1);
  });

  it('publishes the manifests a controller stored but was killed before publishing', async () => {
    await fleet(4);
    const first = services();
    await first.sync.recompute();
    await devicesConverge();
    // Controller A: its broker connection is gone the moment it has stored the batch's manifests.
    const killed = new DesiredSync({
      db,
      publisher: {
        publish: async () => Promise.reject(new Error('killed')),
        clear: async () => undefined,
      },
      key,
      log,
      rollouts: loadRolloutOverrides,
    });
    const a = new RolloutEngine({ db, sync: killed, log, now: () => clock });
    const started = await a.start(
      { service: 'web', image: V2, targets: { groups: ['edge'] }, strategy: { batchSize: 2 } },
      'ops',
    );
    await a.pass().catch(() => undefined);
    const stored = await db.prisma.device.findMany({
      where: { desiredManifest: { not: { equals: null } } },
    });
    const switched = stored
      .filter((d) => JSON.stringify(d.desiredManifest).includes(V2))
      .map((d) => d.id);
    expect(switched).toHaveLength(2);
    // Controller B, which stays: its pass must get those manifests to the devices.
    const published: DeviceManifest[] = [];
    const survivor = new DesiredSync({
      db,
      publisher: { publish: async (m) => void published.push(m), clear: async () => undefined },
      key,
      log,
      rollouts: loadRolloutOverrides,
    });
    const b = new RolloutEngine({ db, sync: survivor, log, now: () => clock });
    await b.pass();
    expect(
      published
        .filter((m) => m.services[0]?.image === V2)
        .map((m) => m.device)
        .sort(),
    ).toEqual(switched.sort());
    expect((await b.status(started.id))!.state).toBe('running');
    await a.close();
    await b.close();
  });

  it('plans without writing anything, showing each device’s image before and after', async () => {
    await fleet(4);
    const { sync, engine } = services();
    await sync.recompute();
    await db.prisma.pin.create({
      data: {
        deviceId: 'd000',
        serviceName: 'web',
        image: `registry.example/acme/web@sha256:${'9'.repeat(64)}`,
      },
    });
    const planned = await engine.plan({
      service: 'web',
      image: V2,
      targets: { groups: ['edge'], selector: 'site=berlin' },
      strategy: { batchSize: 1 },
    });
    expect(planned.plan.excluded).toEqual([{ id: 'd000', reason: 'pinned on the device' }]);
    expect(planned.plan.batches.map((b) => b.devices.map((d) => [d.id, d.from, d.to]))).toEqual([
      [['d001', V1, V2]],
    ]);
    expect(await db.prisma.rollout.count()).toBe(0);
  });

  it('rolls a tag out as the one digest it resolves to at the start, and writes nothing when it does not resolve', async () => {
    await fleet(4);
    const asked: string[] = [];
    const { engine } = services(async (image) => {
      asked.push(image);
      if (image.endsWith(':missing'))
        throw new ImageResolveError(image, 'registry.example answered 404 Not Found');
      return V2;
    });
    const spec = { service: 'web', targets: { groups: ['edge'] } };
    const refused = engine.start({ ...spec, image: 'registry.example/acme/web:missing' }, 'ops');
    await expect(refused).rejects.toMatchObject({
      statusCode: 422,
      message:
        'cannot resolve registry.example/acme/web:missing to a digest: registry.example answered 404 Not Found',
    });
    expect(await db.prisma.rollout.count()).toBe(0);

    const started = await engine.start({ ...spec, image: 'registry.example/acme/web:2' }, 'ops');
    expect(started.targetImage).toBe(V2);
    const tos = await db.prisma.rolloutDevice.findMany({ select: { toImage: true } });
    expect(new Set(tos.map((d) => d.toImage))).toEqual(new Set([V2]));
    // A digest is not asked about again.
    await engine.plan({ ...spec, image: V2 });
    expect(asked).toEqual(['registry.example/acme/web:missing', 'registry.example/acme/web:2']);
    await engine.close();
  });
});
