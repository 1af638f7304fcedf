import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { UnitFile, UnitScope } from '../render.js';
import { unitDirectory } from '../render.js';
import { removeTree } from './cache.js';
import { failure, run } from './run.js';
import { QUADLET } from './trixie-rootfs.js';

export interface QuadletOutput {
  /** Generated units by file name (`web.service`). */
  units: Map<string, string>;
  /** What Quadlet printed on stderr besides its "Loading source unit file" notes. */
  complaints: string[];
}

/**
 * Runs Quadlet's generator in dry-run mode inside the rootfs on our `.container` files, put where
 * the scope's Quadlet looks: system files in a private directory named by QUADLET_UNIT_DIRS (so that
 * runs never share /etc/containers/systemd), user files in `$HOME/.config/containers/systemd` of a
 * private HOME with `-user`, as on a device. Needs no /proc: nothing is mounted.
 */
export async function quadletDryRun(
  rootfs: string,
  files: UnitFile[],
  scope: UnitScope,
): Promise<QuadletOutput> {
  const work = await mkdtemp(join(rootfs, 'tmp', 'podfleet-quadlet-'));
  const inside = `/tmp/${basename(work)}`;
  try {
    const home = join(work, 'home');
    const unitDir =
      scope === 'user'
        ? join(home, unitDirectory('quadlet', 'user'))
        : join(work, unitDirectory('quadlet', 'system'));
    await mkdir(unitDir, { recursive: true });
    for (const file of files.filter((f) => f.kind === 'quadlet')) {
      await writeFile(join(unitDir, file.name), file.contents);
    }
    const env: NodeJS.ProcessEnv = {
      PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: `${inside}/home`,
    };
    if (scope === 'system')
      env.QUADLET_UNIT_DIRS = `${inside}${unitDirectory('quadlet', 'system')}`;
    const args = [rootfs, QUADLET, '-dryrun', ...(scope === 'user' ? ['-user'] : [])];
    const result = await run('chroot', args, { env });
    if (result.code !== 0) throw new Error(`quadlet -dryrun: ${failure(result)}`);
    const complaints = result.stderr
      .split('\n')
      .filter((line) => line.trim() !== '' && !/: Loading source unit file /.test(line));
    return { units: parseDryRun(result.stdout), complaints };
  } finally {
    await removeTree(work);
  }
}

/** `-dryrun` prints each unit after a `---NAME---` line. */
function parseDryRun(stdout: string): Map<string, string> {
  const units = new Map<string, string>();
  let current: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    if (current) units.set(current, `${lines.join('\n').trimEnd()}\n`);
  };
  for (const line of stdout.split('\n')) {
    const header = /^---(.+)---$/.exec(line);
    if (header) {
      flush();
      current = header[1];
      lines = [];
    } else {
      lines.push(line);
    }
  }
  flush();
  return units;
}
