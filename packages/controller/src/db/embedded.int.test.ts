import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readCatalog } from './catalog.js';
import { openDatabase } from './client.js';
import { openEmbeddedStore } from './embedded.js';
import { migrate, migrateDatabase } from './migrate.js';
import { readMigrations } from './migrations.js';
import { pgliteSession, pgSession } from './session.js';
import { copyMigrations, createScratchDatabase } from './testing.js';

describe('the embedded store (PGlite under PODFLEET_DATA)', () => {
  let dataDir: string;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'podfleet-data-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('gets from the migrations the same tables, columns, indexes, constraints and triggers as Postgres', async () => {
    const store = await openEmbeddedStore(dataDir);
    const scratch = await createScratchDatabase();
    const client = new pg.Client({ connectionString: scratch.url });
    try {
      await migrate(pgliteSession(store.db));
      await migrateDatabase(scratch.url);
      await client.connect();

      const embedded = await readCatalog(pgliteSession(store.db));
      const postgres = await readCatalog(pgSession(client));

      expect(embedded).toEqual(postgres);
      expect(embedded.some((line) => line.includes('pins_group_xor_device_check'))).toBe(true);
    } finally {
      await client.end();
      await scratch.drop();
      await store.close();
    }
  });

  it('keeps its data across a restart', async () => {
    const first = await openDatabase({ PODFLEET_DATA: dataDir });
    await first.migrate();
    await first.prisma.device.create({ data: { id: 'dev-1', labels: { site: 'berlin' } } });
    await first.close();

    const second = await openDatabase({ PODFLEET_DATA: dataDir });
    try {
      expect(second.kind).toBe('embedded');
      expect(await second.migrate()).toEqual({ applied: [], unknown: [] });
      expect(await second.prisma.device.findUnique({ where: { id: 'dev-1' } })).toMatchObject({
        labels: { site: 'berlin' },
      });
    } finally {
      await second.close();
    }
  });

  it('is used by one process at a time, and outlives one that died', async () => {
    const store = await openEmbeddedStore(dataDir);
    try {
      await expect(openEmbeddedStore(dataDir)).rejects.toThrow(
        new RegExp(`^embedded store .* is in use by process ${process.pid}$`),
      );
    } finally {
      await store.close();
    }

    await writeFile(join(dataDir, 'postgres.pid'), '2147483646\n'); // no such process
    const reopened = await openEmbeddedStore(dataDir);
    await reopened.close();
  });

  it('refuses a changed migration as Postgres does', async () => {
    const migrationsDir = await copyMigrations();
    const store = await openEmbeddedStore(dataDir);
    try {
      const session = pgliteSession(store.db);
      await migrate(session, { migrationsDir });
      const [first] = await readMigrations(migrationsDir);
      await appendFile(join(migrationsDir, first!.name, 'migration.sql'), '\n-- edited\n');

      await expect(migrate(session, { migrationsDir })).rejects.toThrow(
        new RegExp(`^migration ${first!.name} was modified after it was applied`),
      );
    } finally {
      await store.close();
      await rm(migrationsDir, { recursive: true, force: true });
    }
  });
});
