import { randomBytes } from 'node:crypto';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrateDatabase } from './migrate.js';
import { defaultMigrationsDir } from './migrations.js';
import { pgSession, type SqlSession } from './session.js';

/** The server's maintenance database, from which test databases are created and dropped. */
export const adminDatabaseUrl =
  process.env.PODFLEET_TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

export interface ScratchDatabase {
  name: string;
  url: string;
  /** Drops the database, ending any connection still open to it. */
  drop(): Promise<void>;
}

/**
 * Creates an empty database `podfleet_test_<random>` on the server of `adminUrl`, so that each
 * test run (and each concurrent engineer or CI job) has a database of its own.
 */
export async function createScratchDatabase(
  adminUrl: string = adminDatabaseUrl,
): Promise<ScratchDatabase> {
  const name = `podfleet_test_${randomBytes(6).toString('hex')}`;
  await runAdmin(adminUrl, `CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => dropWhenIdle(adminUrl, name),
  };
}

/**
 * Drops the database once the connections a test closed have gone (a client that is still ending
 * when FORCE terminates it reports "terminating connection due to administrator command" as an
 * uncaught error); after 3 s, FORCE ends whatever is left.
 */
async function dropWhenIdle(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    for (let waited = 0; waited < 3000; waited += 50) {
      const { rows } = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      if (Number(rows[0]!.n) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

async function runAdmin(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect().catch((error: Error) => {
    const { host, pathname } = new URL(adminUrl);
    throw new Error(`cannot connect to postgres://${host}${pathname}: ${error.message}`, {
      cause: error,
    });
  });
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A temporary copy of prisma/migrations that a test may edit or add to. */
export async function copyMigrations(from: string = defaultMigrationsDir): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-migrations-'));
  await cp(from, dir, { recursive: true });
  return dir;
}

/** A migrated scratch database with a pool, and sessions as ingest takes them (`withSession`). */
export interface ScratchPool {
  pool: pg.Pool;
  withSession<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  /** The number in column `n` of the first row of `sql`. */
  count(sql: string, params?: unknown[]): Promise<number>;
  /** Ends the pool and drops the database. */
  close(): Promise<void>;
}

export async function openScratchPool(): Promise<ScratchPool> {
  const db = await createScratchDatabase();
  await migrateDatabase(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  return {
    pool,
    async withSession(work) {
      const client = await pool.connect();
      try {
        return await work(pgSession(client));
      } finally {
        client.release();
      }
    },
    count: async (sql, params = []) =>
      Number((await pool.query<{ n: string }>(sql, params)).rows[0]!.n),
    async close() {
      await pool.end();
      await db.drop();
    },
  };
}
