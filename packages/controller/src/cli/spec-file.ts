import { readFile } from 'node:fs/promises';
import type { ServiceSpec } from '@podfleet/shared';
import { CliError, readAll, type CliIo } from './io.js';

/**
 * Reads service specs from a YAML or JSON file (`-` for standard input): one spec, a list of
 * specs, or several YAML documents. Every problem in every spec is reported, each on one line
 * naming the file and the field path.
 */
export async function readServiceSpecs(path: string, io: CliIo): Promise<ServiceSpec[]> {
  const source = path === '-' ? '<stdin>' : path;
  let text: string;
  try {
    text = path === '-' ? await readAll(io.stdin) : await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError([
      `${source}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    ]);
  }
  // yaml and zod load here, not with the CLI: --help and most commands need neither.
  const [{ parseAllDocuments }, { ServiceSpec, formatIssues }] = await Promise.all([
    import('yaml'),
    import('@podfleet/shared'),
  ]);
  const documents = parseAllDocuments(text, { prettyErrors: true });
  const values: unknown[] = [];
  for (const document of Array.isArray(documents) ? documents : [documents]) {
    const [error] = document.errors;
    if (error) {
      const at = error.linePos?.[0];
      // yaml's pretty message repeats the position and quotes the source; keep the reason only.
      const reason = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new CliError([`${source}${at ? `:${at.line}:${at.col}` : ''}: ${reason}`]);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    values.push(...(Array.isArray(value) ? value : [value]));
  }
  if (values.length === 0) throw new CliError([`${source}: no service spec in the file`]);

  const problems: string[] = [];
  const specs: ServiceSpec[] = [];
  values.forEach((value, index) => {
    const result = ServiceSpec.safeParse(value);
    const where = values.length > 1 ? `${source}[${index}]` : source;
    if (result.success) specs.push(result.data);
    else problems.push(...formatIssues(result.error).map((line) => `${where}: ${line}`));
  });
  const names = specs.map((spec) => spec.name);
  const duplicate = names.find((name, index) => names.indexOf(name) !== index);
  if (duplicate) problems.push(`${source}: service ${duplicate} is defined twice`);
  if (problems.length > 0) throw new CliError(problems);
  return specs;
}
