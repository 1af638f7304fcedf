import pg from 'pg';
import type { Database } from '../db/client.js';
import { pgSession, pgliteSession, type SqlSession } from '../db/session.js';

export interface SessionRunner {
  run<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * Raw SQL sessions for the hot paths (ingest, claims) beside Prisma: pooled pg connections to
 * DATABASE_URL, or the embedded store's single connection.
 */
export function sessionRunner(
  db: Database,
  databaseUrl: string | undefined,
  onIdleError: (error: Error) => void = () => undefined,
): SessionRunner {
  if (databaseUrl) {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    // An idle connection that Postgres ends (a restart, a failover) must not end the controller:
    // the pool drops it and opens another at the next query.
    pool.on('error', (error) => onIdleError(error));
    return {
      async run(work) {
        const client = await pool.connect();
        try {
          return await work(pgSession(client));
        } finally {
          client.release();
        }
      },
      close: () => pool.end(),
    };
  }
  const embedded = db.embedded;
  if (!embedded) throw new Error('embedded store without its PGlite instance');
  const session = pgliteSession(embedded);
  return { run: (work) => work(session), close: async () => undefined };
}
