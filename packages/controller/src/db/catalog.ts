import type { SqlSession } from './session.js';

/**
 * The public schema as sorted lines of text (enums, columns with type, nullability and default,
 * indexes, constraints, triggers, functions), so that two databases migrated by the same files
 * can be compared line by line, e.g. Postgres and the embedded store.
 */
export async function readCatalog(session: SqlSession): Promise<string[]> {
  const lines: string[] = [];
  // One after the other: a session runs one query at a time.
  for (const [kind, sql] of Object.entries(catalogQueries)) {
    const rows = await session.query<Record<string, unknown>>(sql);
    for (const row of rows) lines.push(`${kind} ${Object.values(row).map(String).join(' | ')}`);
  }
  return lines.sort();
}

const catalogQueries = {
  enum: `
    SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) AS labels
    FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
    WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname`,
  column: `
    SELECT table_name, ordinal_position, column_name, udt_name,
           coalesce(character_maximum_length, datetime_precision, -1) AS size,
           is_nullable, coalesce(column_default, '') AS column_default
    FROM information_schema.columns WHERE table_schema = 'public'`,
  index: `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'`,
  constraint: `
    SELECT conrelid::regclass::text AS table_name, conname, pg_get_constraintdef(oid) AS definition
    FROM pg_constraint
    -- Postgres 18 also lists NOT NULL here (contype n); the columns already say nullability.
    WHERE connamespace = 'public'::regnamespace AND contype <> 'n'`,
  trigger: `
    SELECT event_object_table, trigger_name, action_timing, event_manipulation, action_statement
    FROM information_schema.triggers WHERE trigger_schema = 'public'`,
  function: `
    SELECT p.proname, md5(p.prosrc) AS body FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace`,
};
