import { PrismaPg } from '@prisma/adapter-pg';
import {
  bindMigrationAwareSqlAdapterFactory,
  ColumnTypeEnum,
  type ErrorCapturingSqlMigrationAwareDriverAdapterFactory,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
  type SqlQueryable,
} from '@prisma/driver-adapter-utils';
import type pg from 'pg';

// @prisma/adapter-pg, made to talk to Postgres the way the native schema engine does, for the
// wasm schema engine. Two differences matter:
//
// 1. Scripts: adapter-pg's executeScript splits a migration on every `;`, which breaks
//    dollar-quoted function bodies; the native engine sends a script whole. So do we.
//
// 2. Characters: the engine's catalog queries return Postgres' `"char"` (pg_constraint.contype
//    and kin), which the native engine reads as a character and adapter-pg refuses as
//    unsupported. So label those columns text for adapter-pg, remember which they were by their
//    rows array (adapter-pg hands it through), and tell the engine they are characters.

const PG_CHAR = 18;
const PG_TEXT = 25;

const charColumnsOf = new WeakMap<object, number[]>();

/** For `pool.on('connect', …)`: relabels `"char"` result columns as text on this client. */
function relabelCharColumns(client: pg.PoolClient): void {
  type Callback = (error: Error | null, result?: pg.QueryResult) => void;
  type Query = (config: unknown, values?: unknown, callback?: Callback) => unknown;
  const query = client.query.bind(client) as Query;
  const relabel = (result?: pg.QueryResult): pg.QueryResult | undefined => {
    // A script of several statements yields an array of results: nothing for the engine to read.
    if (!result || !Array.isArray(result.fields)) return result;
    const columns: number[] = [];
    result.fields.forEach((field, index) => {
      if (field.dataTypeID !== PG_CHAR) return;
      field.dataTypeID = PG_TEXT;
      columns.push(index);
    });
    if (columns.length > 0) charColumnsOf.set(result.rows, columns);
    return result;
  };
  // pg.Pool#query calls back; a checked-out client (transactions) is used with promises.
  const wrapped: Query = (config, values, callback) => {
    const done = typeof values === 'function' ? (values as Callback) : callback;
    const args = typeof values === 'function' ? undefined : values;
    if (done) return query(config, args, (error, result) => done(error, relabel(result)));
    return (query(config, args) as Promise<pg.QueryResult>).then(relabel);
  };
  Object.assign(client, { query: wrapped });
}

/** The adapter to hand the wasm schema engine for the database behind `pool`. */
export function schemaEngineAdapter(
  pool: pg.Pool,
): ErrorCapturingSqlMigrationAwareDriverAdapterFactory {
  pool.on('connect', relabelCharColumns);
  const factory = new PrismaPg(pool);
  return bindMigrationAwareSqlAdapterFactory({
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => asNativeEngine(await factory.connect(), pool),
    connectToShadowDb: () => Promise.reject(new Error('no shadow database: diff a migrated one')),
  } satisfies SqlMigrationAwareDriverAdapterFactory);
}

function asNativeEngine(adapter: SqlDriverAdapter, pool: pg.Pool): SqlDriverAdapter {
  adapter.executeScript = async (script) => {
    await pool.query(script); // simple query protocol: many statements, $$ bodies intact
  };
  return restoreCharColumns(adapter);
}

function restoreCharColumns<Queryable extends SqlQueryable>(queryable: Queryable): Queryable {
  const queryRaw = queryable.queryRaw.bind(queryable);
  queryable.queryRaw = async (query) => {
    const result = await queryRaw(query);
    for (const index of charColumnsOf.get(result.rows) ?? []) {
      result.columnTypes[index] = ColumnTypeEnum.Character;
    }
    return result;
  };
  return queryable;
}
