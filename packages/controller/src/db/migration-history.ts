import { randomUUID } from 'node:crypto';
import type { Migration } from './migrations.js';
import type { SqlSession } from './session.js';

// Prisma Migrate's bookkeeping, kept exactly as its schema engine keeps it on Postgres, so that
// `prisma migrate deploy|status` on a machine with the engine reads our history as its own.

/** The DDL Prisma's schema engine runs for a new database (same columns, order and defaults). */
const createTable = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
);`;

export interface HistoryRow {
  id: string;
  checksum: string;
  finished_at: Date | null;
  migration_name: string;
  logs: string | null;
  rolled_back_at: Date | null;
  started_at: Date;
  applied_steps_count: number;
}

export async function ensureHistoryTable(session: SqlSession): Promise<void> {
  await session.exec(createTable);
}

export async function readHistory(session: SqlSession): Promise<HistoryRow[]> {
  return session.query<HistoryRow>(
    'SELECT * FROM "_prisma_migrations" ORDER BY "started_at" ASC, "migration_name" ASC',
  );
}

/**
 * Records `migration` as applied, the way Prisma does on success: one step applied, no logs.
 * Runs inside the migration's transaction, so a failed migration leaves no row behind.
 */
export async function recordApplied(
  session: SqlSession,
  migration: Migration,
  startedAt: Date,
): Promise<void> {
  await session.query(
    `INSERT INTO "_prisma_migrations"
       ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at", "applied_steps_count")
     VALUES ($1, $2, clock_timestamp(), $3, NULL, NULL, $4, 1)`,
    [randomUUID(), migration.checksum, migration.name, startedAt],
  );
}
