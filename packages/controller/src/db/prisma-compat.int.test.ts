import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from './migrate.js';
import { defaultMigrationsDir, readMigrations } from './migrations.js';
import { deployAsPrisma, diagnoseAsPrisma } from './prisma-migrate.js';
import { openSchemaEngine, type SchemaEngine } from './schema-engine.js';
import { createScratchDatabase, type ScratchDatabase } from './testing.js';

// Prisma's own schema engine (wasm) is the reference: what it writes into _prisma_migrations on
// one database, our migrator must write on another, and each must accept the other's history.

describe('_prisma_migrations, as Prisma keeps it', () => {
  let ours: ScratchDatabase;
  let prismas: ScratchDatabase;

  beforeAll(async () => {
    [ours, prismas] = await Promise.all([createScratchDatabase(), createScratchDatabase()]);
    await migrateDatabase(ours.url);
    // Closing the engine ends its connections, and with them Prisma's session advisory lock.
    await withSchemaEngine(prismas, (engine) => deployAsPrisma(engine, defaultMigrationsDir));
  });
  afterAll(async () => {
    await Promise.all([ours?.drop(), prismas?.drop()]);
  });

  it('has the same table definition as the one Prisma creates', async () => {
    const definition = `SELECT column_name, ordinal_position, data_type, character_maximum_length,
                               is_nullable, column_default
                        FROM information_schema.columns
                        WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`;
    const primaryKey = `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                        WHERE conrelid = '_prisma_migrations'::regclass`;

    expect(await query(ours, definition)).toEqual(await query(prismas, definition));
    expect(await query(ours, primaryKey)).toEqual(await query(prismas, primaryKey));
    expect((await query(ours, definition)).map((column) => column.column_name)).toEqual([
      'id',
      'checksum',
      'finished_at',
      'migration_name',
      'logs',
      'rolled_back_at',
      'started_at',
      'applied_steps_count',
    ]);
  });

  it('writes the rows Prisma writes: sha256 of the file, one step, no logs, finished', async () => {
    const rows = `SELECT migration_name, checksum, logs, rolled_back_at, applied_steps_count,
                         finished_at IS NOT NULL AS finished, finished_at >= started_at AS ordered,
                         id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' AS uuid
                  FROM _prisma_migrations ORDER BY migration_name`;

    const expected = (await readMigrations()).map((migration) => ({
      migration_name: migration.name,
      checksum: migration.checksum,
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
      finished: true,
      ordered: true,
      uuid: true,
    }));
    expect(await query(prismas, rows)).toEqual(expected);
    expect(await query(ours, rows)).toEqual(expected);
  });

  it('is read by Prisma as its own: nothing edited, failed or pending; deploy applies nothing', async () => {
    await withSchemaEngine(ours, async (engine) => {
      expect(await diagnoseAsPrisma(engine, defaultMigrationsDir)).toMatchObject({
        editedMigrationNames: [],
        failedMigrationNames: [],
        hasMigrationsTable: true,
        history: null,
      });
      expect(await deployAsPrisma(engine, defaultMigrationsDir)).toEqual([]);
    });
  });

  it('reads a history Prisma wrote as its own: nothing to apply', async () => {
    expect(await migrateDatabase(prismas.url)).toEqual({ applied: [], unknown: [] });
  });
});

async function withSchemaEngine<T>(
  db: ScratchDatabase,
  work: (engine: SchemaEngine) => Promise<T>,
): Promise<T> {
  const { engine, close } = await openSchemaEngine(db.url);
  try {
    return await work(engine);
  } finally {
    await close();
  }
}

async function query(db: ScratchDatabase, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await client.end();
  }
}
