import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSchemaDrift } from './drift.js';
import { migrateDatabase } from './migrate.js';
import { defaultSchemaPath } from './migrations.js';
import { copyMigrations, createScratchDatabase, type ScratchDatabase } from './testing.js';

// schema.prisma is what the client is generated from; prisma/migrations is what databases get.
// Prisma's own differ compares a database built by the migrations with the schema.

describe('schema.prisma and prisma/migrations', () => {
  let db: ScratchDatabase;
  let schema: string;

  beforeAll(async () => {
    db = await createScratchDatabase();
    await migrateDatabase(db.url);
    schema = await readFile(defaultSchemaPath, 'utf8');
  });
  afterAll(async () => {
    await db?.drop();
  });

  const driftFrom = (content: string) =>
    findSchemaDrift(db.url, { path: defaultSchemaPath, content });

  it('describe the same database', async () => {
    const drift = await driftFrom(schema);

    expect(
      drift,
      `schema.prisma and prisma/migrations disagree; after editing the schema run ` +
        `\`npm run -w @podfleet/controller migration:create -- NAME\`:\n  ${drift.join('\n  ')}`,
    ).toEqual([]);
  });

  // The check must be able to fail: each edit below is one the migrations do not have.
  it.each([
    [
      'a new field',
      (text: string) => text.replace(/^(\s+arch\s+String\?)$/m, '$1\n  hostname String?'),
      ['model Device.hostname (devices.hostname): [+] Added column `hostname`'],
    ],
    [
      'a field made optional', // the first tokenHash: EnrollmentToken's
      (text: string) => text.replace(/^(\s+tokenHash\s+String)(\s+@unique)/m, '$1?$2'),
      [
        'model EnrollmentToken.tokenHash (enrollment_tokens.token_hash): [*] Altered column `token_hash` (changed from Required to Nullable)',
      ],
    ],
    [
      'a changed type',
      (text: string) => text.replace(/desiredGeneration Int /, 'desiredGeneration BigInt '),
      [
        'model Device.desiredGeneration (devices.desired_generation): [*] Altered column `desired_generation` (type changed)',
      ],
    ],
    [
      'a changed default',
      (text: string) => text.replace(/(priority\s+Int\s+)@default\(0\)/, '$1@default(5)'),
      [
        'model Group.priority (groups.priority): [*] Altered column `priority` (default changed from `Some(Value(Int(0)))` to `Some(Value(Int(5)))`)',
      ],
    ],
    [
      'a dropped index',
      (text: string) => text.replace(/^\s+@@index\(\[receivedAt, id\]\)\n/m, ''),
      ['model DeviceEvent (device_events): [-] Removed index on columns (received_at, id)'],
    ],
    [
      'a new model',
      (text: string) => `${text}\nmodel Firmware {\n  id Int @id\n\n  @@map("firmware")\n}\n`,
      ['model Firmware (firmware): [+] Added table'],
    ],
    [
      'a new enum value',
      (text: string) => text.replace(/^(\s+viewer)$/m, '$1\n  auditor'),
      ['enum ApiRole.auditor (api_role.auditor): [+] Added variant `auditor`'],
    ],
  ])('name the model and field when the schema has %s', async (_change, edit, expected) => {
    const altered = edit(schema);
    expect(altered).not.toBe(schema);

    expect(await driftFrom(altered)).toEqual(expected);
  });

  it('names the model when a migration has what the schema lacks', async () => {
    const migrationsDir = await copyMigrations();
    const other = await createScratchDatabase();
    try {
      await mkdir(join(migrationsDir, '29990101000000_legacy'));
      await writeFile(
        join(migrationsDir, '29990101000000_legacy', 'migration.sql'),
        'ALTER TABLE "devices" ADD COLUMN "legacy" TEXT;',
      );
      await migrateDatabase(other.url, { migrationsDir });

      expect(
        await findSchemaDrift(other.url, { path: defaultSchemaPath, content: schema }),
      ).toEqual(['model Device (devices): [-] Removed column `legacy`']);
    } finally {
      await other.drop();
      await rm(migrationsDir, { recursive: true, force: true });
    }
  });
});
