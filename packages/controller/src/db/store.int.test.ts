import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from './client.js';
import { createScratchDatabase } from './testing.js';

// The same checks on both stores openDatabase can give: Postgres (DATABASE_URL) and the
// embedded PGlite store (PODFLEET_DATA), migrated by the same migrations.

interface Store {
  database: Database;
  dispose(): Promise<void>;
}

const stores: [string, () => Promise<Store>][] = [
  [
    'postgres',
    async () => {
      const scratch = await createScratchDatabase();
      const database = await openDatabase({ DATABASE_URL: scratch.url });
      return { database, dispose: () => database.close().then(() => scratch.drop()) };
    },
  ],
  [
    'embedded',
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'podfleet-data-'));
      const database = await openDatabase({ PODFLEET_DATA: dataDir });
      return {
        database,
        dispose: () => database.close().then(() => rm(dataDir, { recursive: true, force: true })),
      };
    },
  ],
];

const digest = `registry.example/acme/web@sha256:${'a'.repeat(64)}`;

describe.each(stores)('the %s store', (kind, open) => {
  let store: Store;
  let database: Database;

  beforeAll(async () => {
    store = await open();
    database = store.database;
    await database.migrate();
    const { prisma } = database;
    await prisma.service.create({ data: { name: 'web' } });
    await prisma.group.create({ data: { name: 'berlin', selector: 'site=berlin', priority: 10 } });
    await prisma.device.create({ data: { id: 'dev-1', labels: { site: 'berlin' } } });
  });
  afterAll(async () => {
    await store?.dispose();
  });

  it(`is what openDatabase chose, and a second migrate does nothing`, async () => {
    expect(database.kind).toBe(kind);
    expect(await database.migrate()).toEqual({ applied: [], unknown: [] });
  });

  it('takes a pin for exactly one of a group or a device', async () => {
    const { prisma } = database;
    const pin = (target: { groupName?: string; deviceId?: string }) =>
      prisma.pin.create({ data: { ...target, serviceName: 'web', image: digest } });

    await expect(pin({ groupName: 'berlin', deviceId: 'dev-1' })).rejects.toThrow(
      /pins_group_xor_device_check/,
    );
    await expect(pin({})).rejects.toThrow(/pins_group_xor_device_check/);
    await expect(pin({ groupName: 'berlin' })).resolves.toMatchObject({ deviceId: null });
    await expect(pin({ deviceId: 'dev-1' })).resolves.toMatchObject({ groupName: null });
    // One pin per group (or device) and service.
    await expect(pin({ groupName: 'berlin' })).rejects.toMatchObject({ code: 'P2002' });
  });

  it('pins an image by digest only', async () => {
    await expect(
      database.prisma.pin.create({
        data: { deviceId: 'dev-1', serviceName: 'web', image: 'registry.example/acme/web:1.4' },
      }),
    ).rejects.toThrow(/pins_image_digest_check/);
  });

  it('stores a redelivered device event once', async () => {
    const { prisma } = database;
    const events = Array.from({ length: 3 }, (_, index) => ({
      id: randomUUID(),
      deviceId: 'dev-1',
      type: 'apply',
      at: new Date(Date.UTC(2026, 0, 1, 0, 0, index)),
      payload: { index },
    }));

    expect(
      (await prisma.deviceEvent.createMany({ data: events, skipDuplicates: true })).count,
    ).toBe(3);
    expect(
      (await prisma.deviceEvent.createMany({ data: events, skipDuplicates: true })).count,
    ).toBe(0);
    await expect(prisma.deviceEvent.create({ data: events[0]! })).rejects.toMatchObject({
      code: 'P2002',
    });
    expect(await prisma.deviceEvent.count({ where: { id: { in: events.map((e) => e.id) } } })).toBe(
      3,
    );
  });

  it('pages device events by (at, id), newest first', async () => {
    const { prisma } = database;
    const page = (cursor?: { id: string }) =>
      prisma.deviceEvent.findMany({
        where: { deviceId: 'dev-1' },
        orderBy: [{ at: 'desc' }, { id: 'desc' }],
        take: 2,
        ...(cursor ? { cursor, skip: 1 } : {}),
      });

    const first = await page();
    const second = await page({ id: first.at(-1)!.id });

    expect(first).toHaveLength(2);
    expect([...first, ...second].map((event) => event.at.getTime())).toEqual(
      [...first, ...second].map((event) => event.at.getTime()).sort((a, b) => b - a),
    );
  });

  it('refuses to change device events, service revisions and audit entries', async () => {
    const { prisma } = database;
    await prisma.serviceRevision.create({
      data: { serviceName: 'web', revision: 1, spec: { name: 'web' }, image: 'web:1' },
    });
    await prisma.auditEntry.create({ data: { actor: 'cli', action: 'group.create', target: 'x' } });

    await expect(prisma.deviceEvent.updateMany({ data: { type: 'changed' } })).rejects.toThrow(
      /device_events is append-only: UPDATE refused/,
    );
    await expect(prisma.serviceRevision.updateMany({ data: { image: 'web:2' } })).rejects.toThrow(
      /service_revisions is append-only/,
    );
    await expect(prisma.auditEntry.updateMany({ data: { actor: 'x' } })).rejects.toThrow(
      /audit_log is append-only/,
    );
  });

  it('runs the row claims and advisory locks the rollout engine will use', async () => {
    const { prisma } = database;
    const claimed = await prisma.$transaction(async (tx) => {
      const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`
        SELECT pg_try_advisory_xact_lock(4242) AS locked`;
      const rows = await tx.$queryRaw<{ id: string }[]>`
        SELECT id FROM devices ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED`;
      await tx.device.update({
        where: { id: 'dev-1' },
        data: { desiredGeneration: { increment: 1 } },
      });
      return { locked: lock?.locked, ids: rows.map((row) => row.id) };
    });

    expect(claimed).toEqual({ locked: true, ids: ['dev-1'] });
  });
});
