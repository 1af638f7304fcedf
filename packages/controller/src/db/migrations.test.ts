import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultMigrationsDir, migrationLockFile, readMigrations } from './migrations.js';

describe('readMigrations', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'podfleet-migrations-'));
    await writeFile(join(dir, migrationLockFile), 'provider = "postgresql"\n');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function add(name: string, sql: string): Promise<void> {
    await mkdir(join(dir, name));
    await writeFile(join(dir, name, 'migration.sql'), sql);
  }

  it('reads folders in name order, with the sha256 of each file as Prisma records it', async () => {
    await add('20260201000000_second', 'SELECT 2;\r\n');
    await add('20260101000000_first', 'SELECT 1;\n');

    const migrations = await readMigrations(dir);

    expect(migrations.map((migration) => migration.name)).toEqual([
      '20260101000000_first',
      '20260201000000_second',
    ]);
    // Bytes as they are on disk: a CRLF file has its own checksum.
    expect(migrations[1]!.checksum).toBe(
      createHash('sha256').update('SELECT 2;\r\n').digest('hex'),
    );
  });

  it('refuses a folder without migration.sql, naming it', async () => {
    await mkdir(join(dir, '20260101000000_empty'));

    await expect(readMigrations(dir)).rejects.toThrow(
      /^migration 20260101000000_empty: migration\.sql is missing$/,
    );
  });

  it('refuses migrations locked to another provider', async () => {
    await writeFile(join(dir, migrationLockFile), 'provider = "sqlite"\n');

    await expect(readMigrations(dir)).rejects.toThrow(/provider is sqlite, expected postgresql$/);
  });

  it('refuses a migrations folder that is not there', async () => {
    await expect(readMigrations(join(dir, 'nope'))).rejects.toThrow(/nope does not exist$/);
  });

  it("finds this repository's migrations, locked to postgresql", async () => {
    const migrations = await readMigrations();

    expect(migrations[0]?.name).toMatch(/^\d{14}_init$/);
    expect(await readFile(join(defaultMigrationsDir, migrationLockFile), 'utf8')).toContain(
      'provider = "postgresql"',
    );
  });
});
