import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type {
  DiagnoseMigrationHistoryOutput,
  MigrationList,
} from '@prisma/schema-engine-wasm/schema_engine_bg';
import { migrationLockFile, readMigrations } from './migrations.js';
import { runEngine, type SchemaEngine } from './schema-engine.js';

// The `prisma migrate` commands this repository needs, on the wasm schema engine.

export interface SchemaFile {
  path: string;
  content: string;
}

const noFilters = { externalTables: [], externalEnums: [] };

/**
 * What `prisma migrate diff --from-config-datasource --to-schema [--script]` prints: the changes
 * that would bring the engine's database to `schema`; empty when there are none.
 */
export async function diffDatabaseToSchema(
  engine: SchemaEngine,
  schema: SchemaFile,
  options: { script: boolean },
): Promise<string> {
  const result = await runEngine(() =>
    engine.diff({
      from: { tag: 'schemaDatasource', files: [schema], configDir: dirname(schema.path) },
      to: { tag: 'schemaDatamodel', files: [schema] },
      script: options.script,
      exitCode: true,
      filters: noFilters,
    }),
  );
  // With --exit-code the CLI exits 2 for "not empty" and 0 for "no difference".
  return result.exitCode === 0 ? '' : (result.stdout ?? '');
}

/** What `prisma migrate deploy` does; returns the migrations it applied. */
export async function deployAsPrisma(engine: SchemaEngine, dir: string): Promise<string[]> {
  const migrationsList = await migrationListOf(dir);
  const result = await runEngine(() =>
    engine.applyMigrations({ migrationsList, filters: noFilters }),
  );
  return result.appliedMigrationNames;
}

/** What `prisma migrate status` reads: edited, failed and unapplied migrations. */
export async function diagnoseAsPrisma(
  engine: SchemaEngine,
  dir: string,
): Promise<DiagnoseMigrationHistoryOutput> {
  const migrationsList = await migrationListOf(dir);
  return runEngine(() =>
    engine.diagnoseMigrationHistory({
      migrationsList,
      optInToShadowDatabase: false,
      filters: noFilters,
    }),
  );
}

/** The migrations folder as the CLI hands it to the engine. */
async function migrationListOf(dir: string): Promise<MigrationList> {
  const migrations = await readMigrations(dir);
  const lockfile = await readFile(join(dir, migrationLockFile), 'utf8').catch(() => null);
  return {
    baseDir: dir,
    lockfile: { path: migrationLockFile, content: lockfile },
    shadowDbInitScript: '',
    migrationDirectories: migrations.map((migration) => ({
      path: migration.name,
      migrationFile: { path: 'migration.sql', content: { tag: 'ok', value: migration.sql } },
    })),
  };
}
