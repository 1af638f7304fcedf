import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One folder of prisma/migrations: `<timestamp>_<name>/migration.sql`. */
export interface Migration {
  /** The folder name, which is what `_prisma_migrations.migration_name` records. */
  name: string;
  sql: string;
  /** sha256 hex of migration.sql's bytes, as Prisma Migrate computes it. */
  checksum: string;
}

/** prisma/migrations of this repository, from src/db or dist/db alike. */
export const defaultMigrationsDir = fileURLToPath(
  new URL('../../../../prisma/migrations', import.meta.url),
);

/** The schema the migrations must match (db/drift.int.test.ts). */
export const defaultSchemaPath = fileURLToPath(
  new URL('../../../../prisma/schema.prisma', import.meta.url),
);

export const migrationLockFile = 'migration_lock.toml';

export function checksumOf(sql: string | Buffer): string {
  return createHash('sha256').update(sql).digest('hex');
}

/**
 * Reads the migrations in the order Prisma applies them (folder names sorted), refusing a
 * folder without migration.sql and a lock file for another provider, as `prisma migrate` does.
 */
export async function readMigrations(dir: string = defaultMigrationsDir): Promise<Migration[]> {
  if (!existsSync(dir)) throw new Error(`migrations: ${dir} does not exist`);
  await assertPostgresLock(dir);
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const file = join(dir, name, 'migration.sql');
      if (!existsSync(file)) throw new Error(`migration ${name}: migration.sql is missing`);
      const bytes = await readFile(file);
      return { name, sql: bytes.toString('utf8'), checksum: checksumOf(bytes) };
    }),
  );
}

async function assertPostgresLock(dir: string): Promise<void> {
  const lockPath = join(dir, migrationLockFile);
  if (!existsSync(lockPath)) return;
  const lock = await readFile(lockPath, 'utf8');
  const provider = /^\s*provider\s*=\s*"([^"]*)"/m.exec(lock)?.[1];
  if (provider !== 'postgresql') {
    throw new Error(`${lockPath}: provider is ${provider ?? 'missing'}, expected postgresql`);
  }
}
