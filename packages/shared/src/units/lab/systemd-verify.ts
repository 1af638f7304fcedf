import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UnitScope } from '../render.js';
import { removeTree } from './cache.js';
import { run } from './run.js';

export interface VerifyResult {
  code: number;
  /** Every line systemd-analyze printed, stdout and stderr. */
  lines: string[];
  /**
   * The lines that name one of our units or files. Other lines would be about the host's own units
   * that verify loads as dependencies of ours (targets); on this host there are none at all.
   */
  aboutOurUnits: string[];
}

/**
 * `systemd-analyze verify` on unit files written side by side in a private directory (verify adds
 * the directory of the files it is given to the unit search path, so a service finds its socket).
 * It loads the units into a private manager in test mode: no running systemd needed, none started.
 * User units need `--user` and an existing XDG_RUNTIME_DIR (%t), which a host without a user
 * session lacks: a private one is made.
 */
export async function verifyUnits(
  files: { name: string; contents: string }[],
  scope: UnitScope,
): Promise<VerifyResult> {
  const work = await mkdtemp(join(tmpdir(), 'podfleet-verify-'));
  try {
    const paths: string[] = [];
    for (const file of files) {
      const path = join(work, file.name);
      await writeFile(path, file.contents);
      paths.push(path);
    }
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, LANG: 'C.UTF-8' };
    if (scope === 'user') {
      env.XDG_RUNTIME_DIR = join(work, 'runtime');
      await mkdir(env.XDG_RUNTIME_DIR);
    }
    const scopeArgs = scope === 'user' ? ['--user'] : [];
    const result = await run('systemd-analyze', [...scopeArgs, 'verify', '--man=no', ...paths], {
      env,
      cwd: work,
    });
    const lines = `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => l.trim() !== '');
    const ours = [work, ...files.map((file) => file.name)];
    const aboutOurUnits = lines.filter((line) => ours.some((mark) => line.includes(mark)));
    return { code: result.code, lines, aboutOurUnits };
  } finally {
    await removeTree(work);
  }
}
