import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AGENT_ENTRY } from './agent-files.js';
import type { AgentBundle } from './enroll-ssh.js';

/** packages/agent/scripts/bundle.mjs, from src/ or dist/ of this package alike. */
const BUNDLE_SCRIPT = fileURLToPath(
  new URL('../../../../agent/scripts/bundle.mjs', import.meta.url),
);

/**
 * The agent as one file, and its unit: built by the agent package's bundle script the first time
 * and whenever a source changed (the script decides, in about a second), else reused.
 */
export async function repoAgentBundle(): Promise<AgentBundle> {
  if (!existsSync(BUNDLE_SCRIPT)) {
    throw new Error(`no agent bundle: ${BUNDLE_SCRIPT} is missing (pass --agent-bundle FILE)`);
  }
  const { stdout } = await promisify(execFile)(process.execPath, [BUNDLE_SCRIPT], {
    maxBuffer: 1 << 20,
  }).catch((error: Error & { stderr?: string }) => {
    throw new Error(`bundling the agent failed: ${(error.stderr ?? error.message).trim()}`);
  });
  const made = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    path: string;
    entry: string;
    unitPath: string;
  };
  if (made.entry !== AGENT_ENTRY) {
    throw new Error(`the bundle's unit runs ${made.entry}, enrollment installs ${AGENT_ENTRY}`);
  }
  return bundleAt(made.path, made.unitPath);
}

/** A bundle built before (`--agent-bundle FILE`): FILE.mjs and its FILE.service beside it. */
export async function bundleAt(path: string, unitPath = path.replace(/\.mjs$/, '') + '.service') {
  const [bytes, unit] = await Promise.all([
    readFile(path).catch(() => {
      throw new Error(`${path}: cannot read the agent bundle`);
    }),
    readFile(unitPath, 'utf8').catch(() => {
      throw new Error(`${unitPath}: cannot read the agent's unit (made with the bundle)`);
    }),
  ]);
  if (!unit.includes(`ExecStart=/usr/bin/env node ${AGENT_ENTRY} `)) {
    throw new Error(`${unitPath}: its ExecStart does not run ${AGENT_ENTRY}`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { path, bytes: bytes.length, sha256, content: bytes, unit } satisfies AgentBundle;
}
