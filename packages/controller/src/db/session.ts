import type { PGlite, Transaction } from '@electric-sql/pglite';
import type pg from 'pg';

/**
 * One database session: the little the migrator needs, so that the same code runs on a pg
 * connection and on the embedded PGlite store. A session, not a pool: advisory locks and
 * transactions belong to one connection.
 */
export interface SqlSession {
  query<Row extends object>(sql: string, params?: readonly unknown[]): Promise<Row[]>;
  /** Runs a script of several statements, as psql would. */
  exec(script: string): Promise<void>;
  /** Runs `work` in a transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (session: SqlSession) => Promise<T>): Promise<T>;
}

export function pgSession(client: pg.ClientBase): SqlSession {
  const session: SqlSession = {
    async query<Row extends object>(sql: string, params: readonly unknown[] = []) {
      const result = await client.query<Row>(sql, [...params]);
      return result.rows;
    },
    async exec(script) {
      // Without parameters pg uses the simple query protocol, which takes many statements.
      await client.query(script);
    },
    async transaction(work) {
      await client.query('BEGIN');
      try {
        const result = await work(session);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK');
        throw error;
      }
    },
  };
  return session;
}

export function pgliteSession(db: PGlite): SqlSession {
  return {
    ...queriesOf(db),
    // PGlite's own transaction() also keeps other users of the instance out until it ends.
    transaction: (work) => db.transaction((tx) => work(pgliteTransactionSession(tx))),
  };
}

function pgliteTransactionSession(tx: Transaction): SqlSession {
  return {
    ...queriesOf(tx),
    transaction: () => Promise.reject(new Error('nested transactions are not supported')),
  };
}

function queriesOf(db: PGlite | Transaction): Pick<SqlSession, 'query' | 'exec'> {
  return {
    async query<Row extends object>(sql: string, params: readonly unknown[] = []) {
      const result = await db.query<Row>(sql, [...params]);
      return result.rows;
    },
    async exec(script) {
      await db.exec(script);
    },
  };
}
