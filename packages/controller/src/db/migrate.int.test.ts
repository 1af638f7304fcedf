import { appendFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { migrateDatabase } from './migrate.js';
import { readMigrations } from './migrations.js';
import { copyMigrations, createScratchDatabase, type ScratchDatabase } from './testing.js';

describe('migrate (Postgres)', () => {
  let db: ScratchDatabase;
  let migrationsDir: string;

  beforeEach(async () => {
    db = await createScratchDatabase();
    migrationsDir = await copyMigrations();
  });
  afterEach(async () => {
    await db.drop();
    await rm(migrationsDir, { recursive: true, force: true });
  });

  async function sql<Row extends object>(text: string, params: unknown[] = []): Promise<Row[]> {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query<Row>(text, params)).rows;
    } finally {
      await client.end();
    }
  }

  const historyNames = async () =>
    (
      await sql<{ migration_name: string }>(
        'SELECT migration_name FROM _prisma_migrations ORDER BY started_at',
      )
    ).map((row) => row.migration_name);

  it('applies every migration to an empty database and records each once', async () => {
    const names = (await readMigrations(migrationsDir)).map((migration) => migration.name);

    const result = await migrateDatabase(db.url, { migrationsDir });

    expect(result).toEqual({ applied: names, unknown: [] });
    expect(await historyNames()).toEqual(names);
    const tables = await sql<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
    );
    expect(tables.map((row) => row.tablename)).toEqual(
      expect.arrayContaining(['devices', 'groups', 'pins', 'device_events', 'audit_log']),
    );
  });

  it('is a no-op the second time', async () => {
    await migrateDatabase(db.url, { migrationsDir });
    const before = await sql('SELECT * FROM _prisma_migrations ORDER BY id');

    const again = await migrateDatabase(db.url, { migrationsDir });

    expect(again).toEqual({ applied: [], unknown: [] });
    expect(await sql('SELECT * FROM _prisma_migrations ORDER BY id')).toEqual(before);
  });

  it('applies once when several controllers start at the same moment', async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () => migrateDatabase(db.url, { migrationsDir })),
    );

    const names = (await readMigrations(migrationsDir)).map((migration) => migration.name);
    expect(results.map((result) => result.applied.length).sort()).toEqual([0, 0, 0, names.length]);
    expect(await historyNames()).toEqual(names);
  });

  it('waits while Prisma Migrate holds its advisory lock', async () => {
    const prisma = new pg.Client({ connectionString: db.url });
    await prisma.connect();
    await prisma.query('SELECT pg_advisory_lock(72707369)'); // what `prisma migrate` takes
    let done = false;
    const migrating = migrateDatabase(db.url, { migrationsDir }).then((result) => {
      done = true;
      return result;
    });

    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(done).toBe(false);
    await prisma.end();

    expect((await migrating).applied.length).toBeGreaterThan(0);
  });

  it('applies a new migration later, after the ones already applied', async () => {
    await migrateDatabase(db.url, { migrationsDir });
    await addMigration(migrationsDir, '29990101000000_notes', 'CREATE TABLE "notes" ("id" INT);');

    const result = await migrateDatabase(db.url, { migrationsDir });

    expect(result.applied).toEqual(['29990101000000_notes']);
    expect((await historyNames()).at(-1)).toBe('29990101000000_notes');
  });

  it('refuses to run when an applied migration was changed, naming it', async () => {
    await migrateDatabase(db.url, { migrationsDir });
    const [first] = await readMigrations(migrationsDir);
    await appendFile(join(migrationsDir, first!.name, 'migration.sql'), '\n-- edited\n');
    await addMigration(migrationsDir, '29990101000000_notes', 'CREATE TABLE "notes" ("id" INT);');

    const error = await migrateDatabase(db.url, { migrationsDir }).catch((caught: Error) => caught);

    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(
      new RegExp(`^migration ${first!.name} was modified after it was applied \\(checksum \\w+`),
    );
    expect((error as Error).message).not.toContain('\n');
    // Nothing after it ran either.
    expect(await historyNames()).not.toContain('29990101000000_notes');
  });

  it('rolls a failing migration back whole and leaves no history row for it', async () => {
    await migrateDatabase(db.url, { migrationsDir });
    await addMigration(
      migrationsDir,
      '29990101000000_broken',
      'CREATE TABLE "half" ("id" INT);\nALTER TABLE "no_such_table" ADD COLUMN "x" INT;',
    );

    await expect(migrateDatabase(db.url, { migrationsDir })).rejects.toThrow(
      /^migration 29990101000000_broken failed and was rolled back: relation "no_such_table" does not exist$/,
    );
    expect(await sql("SELECT 1 FROM pg_tables WHERE tablename = 'half'")).toEqual([]);
    expect(await historyNames()).not.toContain('29990101000000_broken');
  });

  it('refuses to run after a migration that Prisma recorded as failed', async () => {
    await migrateDatabase(db.url, { migrationsDir });
    await sql(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, applied_steps_count)
       VALUES (gen_random_uuid()::text, $1, '29990101000000_broken', 'boom', 0)`,
      ['0'.repeat(64)],
    );

    await expect(migrateDatabase(db.url, { migrationsDir })).rejects.toThrow(
      /^migration 29990101000000_broken failed earlier and is not resolved/,
    );
  });

  it('reports applied migrations that this code does not know, and carries on', async () => {
    await migrateDatabase(db.url, { migrationsDir });
    await addMigration(migrationsDir, '29990101000000_notes', 'CREATE TABLE "notes" ("id" INT);');
    await migrateDatabase(db.url, { migrationsDir });
    await rm(join(migrationsDir, '29990101000000_notes'), { recursive: true });

    expect(await migrateDatabase(db.url, { migrationsDir })).toEqual({
      applied: [],
      unknown: ['29990101000000_notes'],
    });
  });
});

async function addMigration(dir: string, name: string, sql: string): Promise<void> {
  await mkdir(join(dir, name));
  await writeFile(join(dir, name, 'migration.sql'), sql);
}
