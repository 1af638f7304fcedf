import pg from 'pg';
import {
  ensureHistoryTable,
  readHistory,
  recordApplied,
  type HistoryRow,
} from './migration-history.js';
import { readMigrations, type Migration } from './migrations.js';
import { pgSession, type SqlSession } from './session.js';

/**
 * The key Prisma Migrate takes with pg_advisory_lock on Postgres; taking the same one keeps
 * this migrator, other controllers and `prisma migrate deploy` from running at once.
 */
const PRISMA_MIGRATE_LOCK = 72707369;

export interface MigrateOptions {
  /** prisma/migrations by default. */
  migrationsDir?: string;
}

export interface MigrateResult {
  /** Migrations this call applied, in order. */
  applied: string[];
  /** Applied migrations that this code does not have (a newer controller ran them). */
  unknown: string[];
}

/**
 * Applies the pending migrations in order, each in its own transaction together with its
 * `_prisma_migrations` row, while holding Prisma Migrate's advisory lock. Refuses to start when
 * the history shows a failed migration or an applied migration whose file has changed since.
 */
export async function migrate(
  session: SqlSession,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const migrations = await readMigrations(options.migrationsDir);
  // Session-level lock: held across the per-migration transactions, released in finally.
  await session.query(`SELECT pg_advisory_lock(${PRISMA_MIGRATE_LOCK})`);
  try {
    await ensureHistoryTable(session);
    const history = await readHistory(session);
    const pending = pendingMigrations(migrations, history);
    for (const migration of pending) await applyMigration(session, migration);
    const known = new Set(migrations.map((migration) => migration.name));
    const unknown = finished(history)
      .map((row) => row.migration_name)
      .filter((name) => !known.has(name));
    return { applied: pending.map((migration) => migration.name), unknown };
  } finally {
    // If the session broke, its locks went with it; do not hide the error that broke it.
    await session.query(`SELECT pg_advisory_unlock(${PRISMA_MIGRATE_LOCK})`).catch(() => {});
  }
}

/** Migrates the Postgres database at `url` over a connection of its own. */
export async function migrateDatabase(
  url: string,
  options: MigrateOptions = {},
): Promise<MigrateResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await migrate(pgSession(client), options);
  } finally {
    await client.end();
  }
}

/** The migrations still to apply; throws if the history cannot be trusted. */
export function pendingMigrations(migrations: Migration[], history: HistoryRow[]): Migration[] {
  // Like Prisma, a failed migration blocks everything until someone resolves it.
  const failed = history.find((row) => row.finished_at === null && row.rolled_back_at === null);
  if (failed) {
    throw new Error(
      `migration ${failed.migration_name} failed earlier and is not resolved; fix the database, then run prisma migrate resolve`,
    );
  }
  const applied = new Map(finished(history).map((row) => [row.migration_name, row]));
  for (const migration of migrations) {
    const row = applied.get(migration.name);
    if (row && row.checksum !== migration.checksum) {
      throw new Error(
        `migration ${migration.name} was modified after it was applied (checksum ${migration.checksum} on disk, ${row.checksum} in the database)`,
      );
    }
  }
  return migrations.filter((migration) => !applied.has(migration.name));
}

function finished(history: HistoryRow[]): HistoryRow[] {
  return history.filter((row) => row.finished_at !== null && row.rolled_back_at === null);
}

async function applyMigration(session: SqlSession, migration: Migration): Promise<void> {
  try {
    await session.transaction(async (tx) => {
      const [started] = await tx.query<{ now: Date }>('SELECT clock_timestamp() AS now');
      await tx.exec(migration.sql);
      await recordApplied(tx, migration, started?.now ?? new Date());
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`migration ${migration.name} failed and was rolled back: ${reason}`, {
      cause: error,
    });
  }
}
