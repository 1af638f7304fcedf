/** Where a model of schema.prisma lives in the database. */
export interface ModelTable {
  model: string;
  table: string;
  /** column name → field name */
  fields: Map<string, string>;
}

/**
 * Reads model → table and field → column names (`@@map`, `@map`) from Prisma schema text, so
 * that messages about the database can name the model and field a person edits. A line
 * reader, not a parser: it relies on `prisma format` layout (one field per line, braces alone).
 */
export function modelTablesOf(schemaText: string): Map<string, ModelTable> {
  const tables = new Map<string, ModelTable>();
  let current: ModelTable | undefined;
  for (const raw of schemaText.split('\n')) {
    const line = raw.replace(/\/\/.*$/, '').trim();
    const opening = /^(model|enum)\s+(\w+)\s*\{$/.exec(line);
    if (opening) {
      current = { model: `${opening[1]} ${opening[2]}`, table: opening[2]!, fields: new Map() };
      continue;
    }
    if (!current) continue;
    if (line === '}') {
      tables.set(current.table, current);
      current = undefined;
      continue;
    }
    const tableMap = /^@@map\("([^"]+)"\)/.exec(line);
    if (tableMap) {
      current.table = tableMap[1]!;
      continue;
    }
    const field = /^(\w+)\b/.exec(line);
    if (field) {
      const column = /@map\("([^"]+)"\)/.exec(line)?.[1] ?? field[1]!;
      current.fields.set(column, field[1]!);
    }
  }
  return tables;
}
