import { diffDatabaseToSchema, type SchemaFile } from './prisma-migrate.js';
import { openSchemaEngine } from './schema-engine.js';
import { modelTablesOf, type ModelTable } from './schema-names.js';

/**
 * Compares the database at `url` (migrated by migrate.ts) with `schema`, using Prisma's own
 * differ: what `prisma migrate diff --from-config-datasource --to-schema` would report.
 * Returns one line per difference, naming the model and field (empty: no drift).
 */
export async function findSchemaDrift(url: string, schema: SchemaFile): Promise<string[]> {
  const { engine, close } = await openSchemaEngine(url);
  try {
    const summary = await diffDatabaseToSchema(engine, schema, { script: false });
    return describeDrift(summary, schema.content);
  } finally {
    await close();
  }
}

/**
 * Rewrites the engine's summary (what a new migration would have to do for the migrated database
 * to match the schema) into one line per change, naming the model and field in schema.prisma.
 */
export function describeDrift(summary: string, schemaText: string): string[] {
  const tables = modelTablesOf(schemaText);
  const lines: string[] = [];
  let heading = '';
  let changedTable: string | undefined;
  for (const raw of summary.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const changed = /^\[\*\] Changed the `([^`]+)` (?:table|enum)$/.exec(line);
    const listed = /^- (\S+)$/.exec(line);
    if (changed) {
      changedTable = changed[1];
    } else if (listed) {
      // An entry under a heading such as "[+] Added tables".
      lines.push(`${nameOf(tables, listed[1]!)}: ${heading.replace(/s$/, '')}`);
    } else if (!raw.startsWith(' ')) {
      heading = line;
      changedTable = undefined;
    } else {
      lines.push(`${nameOf(tables, changedTable ?? '?', line)}: ${line}`);
    }
  }
  return lines;
}

/** `model Device.lastSeen (devices.last_seen)`, or as much of it as the schema knows. */
function nameOf(tables: Map<string, ModelTable>, table: string, change?: string): string {
  const model = tables.get(table);
  if (!model) return `table ${table}`;
  const column = change === undefined ? undefined : /`([^`]+)`/.exec(change)?.[1];
  const field = column === undefined ? undefined : model.fields.get(column);
  return field ? `${model.model}.${field} (${table}.${column})` : `${model.model} (${table})`;
}
