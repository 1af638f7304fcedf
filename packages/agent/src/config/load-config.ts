import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { AgentConfig, formatIssues } from '@podfleet/shared';

/** A config problem, as one line: `agent.yaml: broker.url: not a URL: "x"`. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The config with the secrets it points at read in. */
export interface LoadedAgentConfig {
  config: AgentConfig;
  password: string | undefined;
  ca: Buffer | undefined;
}

/** Reads and validates the agent's YAML config, then the password and CA files it names. */
export async function loadAgentConfig(path: string): Promise<LoadedAgentConfig> {
  const config = parseAgentConfig(await readText(path, path), path);
  const { broker } = config;
  const password =
    broker.passwordFile !== undefined
      ? firstLine(await readText(broker.passwordFile, `${path}: broker.passwordFile`))
      : broker.password;
  const ca =
    broker.caFile !== undefined
      ? Buffer.from(await readText(broker.caFile, `${path}: broker.caFile`))
      : undefined;
  return { config, password, ca };
}

/** Validates config text; `source` names it in errors. Every problem in one line. */
export function parseAgentConfig(text: string, source: string): AgentConfig {
  const lines = new LineCounter();
  const document = parseDocument(text, {
    prettyErrors: false,
    uniqueKeys: true,
    lineCounter: lines,
  });
  const problem = document.errors[0];
  if (problem) {
    const at = lines.linePos(problem.pos[0]);
    const where = `line ${at.line}, column ${at.col}: `;
    throw new ConfigError(`${source}: ${where}${problem.message.split('\n')[0]}`);
  }
  const parsed = AgentConfig.safeParse(document.toJS() ?? {});
  if (!parsed.success) throw new ConfigError(`${source}: ${formatIssues(parsed.error).join('; ')}`);
  return parsed.data;
}

/** Reads a file; `what` says whose it is in the error (the config itself, or a field of it). */
async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`${what}: cannot read${what === path ? '' : ` ${path}`} (${code})`);
  }
}

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0] ?? '';
}
