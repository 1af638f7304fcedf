import type { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { DEFAULT_DATA_DIR } from '../serve/data-dir.js';
import { openEmbeddedStore } from './embedded.js';
import { PrismaClient } from './generated/client.js';
import { migrate, migrateDatabase, type MigrateOptions, type MigrateResult } from './migrate.js';
import { pgliteSession } from './session.js';

export { Prisma, PrismaClient } from './generated/client.js';

export interface DatabaseEnv {
  DATABASE_URL?: string;
  PODFLEET_DATA?: string;
}

export interface Database {
  prisma: PrismaClient;
  /** `postgres`: the server at DATABASE_URL; `embedded`: PGlite under PODFLEET_DATA. */
  kind: 'postgres' | 'embedded';
  /** The embedded store's PGlite instance, for raw SQL beside Prisma (kind `embedded` only). */
  embedded?: PGlite;
  /** For logs: the server and database, or the data directory; never a password. */
  location: string;
  /** Applies pending migrations (see migrate.ts); safe to call from several controllers. */
  migrate(options?: MigrateOptions): Promise<MigrateResult>;
  close(): Promise<void>;
}

/** DATABASE_URL → Postgres through @prisma/adapter-pg; none → the embedded store. */
export async function openDatabase(env: DatabaseEnv = process.env): Promise<Database> {
  const url = env.DATABASE_URL?.trim();
  if (url) return openPostgres(url);
  return openEmbedded(env.PODFLEET_DATA?.trim() || DEFAULT_DATA_DIR);
}

function openPostgres(url: string): Database {
  const location = describeUrl(url);
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
  return {
    prisma,
    kind: 'postgres',
    location,
    migrate: (options) => migrateDatabase(url, options),
    close: () => prisma.$disconnect(),
  };
}

async function openEmbedded(dataDir: string): Promise<Database> {
  const store = await openEmbeddedStore(dataDir);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(store.db) });
  return {
    prisma,
    kind: 'embedded',
    embedded: store.db,
    location: store.dir,
    migrate: (options) => migrate(pgliteSession(store.db), options),
    async close() {
      await prisma.$disconnect();
      await store.close();
    },
  };
}

function describeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `postgres://${parsed.host}${parsed.pathname}`;
  } catch {
    throw new Error('DATABASE_URL: not a URL (expected postgresql://user:password@host:5432/db)');
  }
}
