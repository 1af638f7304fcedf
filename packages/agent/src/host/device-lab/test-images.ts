import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOnce, hostRun, labCacheDir } from './lab-cache.js';
import type { LabDevice } from './lab-device.js';
import { BUSYBOX } from './lab-host.js';

const SOURCE = fileURLToPath(new URL('./tinyapp.c', import.meta.url));
/** busybox applets the image offers (for health checks and `podman exec`). */
const APPLETS = ['sh', 'nc', 'cat', 'echo', 'sleep', 'true', 'false', 'wget'];
const TARBALL_IN_DEVICE = '/var/tmp/podfleet-app.tar';

/**
 * How a container of the test app behaves, through its environment (tinyapp.c): `MSG` is what it
 * answers, `NO_NOTIFY` never sends READY=1, `CRASH_AFTER_MS` exits 1 that long after it started,
 * `FAIL` exits 1 at once.
 */
export type AppBehaviour = Partial<Record<'MSG' | 'NO_NOTIFY' | 'CRASH_AFTER_MS' | 'FAIL', string>>;

/** The app's root filesystem as a tar: busybox-static and the static tinyapp, nothing else. */
export async function appTarball(): Promise<string> {
  const hash = createHash('sha256')
    .update(await readFile(SOURCE))
    .update(await readFile(BUSYBOX))
    .digest('hex')
    .slice(0, 10);
  const dir = await buildOnce(join(labCacheDir(), `test-app-${hash}`), async (partial) => {
    const bin = join(partial, 'rootfs/bin');
    await mkdir(bin, { recursive: true });
    await hostRun(['gcc', '-O2', '-static', '-Wall', '-o', join(bin, 'tinyapp'), SOURCE]);
    await copyFile(BUSYBOX, join(bin, 'busybox'));
    await chmod(join(bin, 'busybox'), 0o755);
    for (const applet of APPLETS) await symlink('busybox', join(bin, applet));
    const tar = join(partial, 'app.tar');
    await hostRun([
      'tar',
      '-C',
      join(partial, 'rootfs'),
      '--owner=0',
      '--group=0',
      '-cf',
      tar,
      '.',
    ]);
  });
  return join(dir, 'app.tar');
}

/**
 * Imports the app into the device's Podman as `reference` (no registry involved: `podman import`
 * of the tarball) and returns the new image id. Each import makes a new image, so importing again
 * under the same reference is "a new image was built" for auto-update's `local` policy.
 */
export async function importAppImage(
  device: LabDevice,
  reference: string,
  behaviour: AppBehaviour = {},
  /** Podman's global options, e.g. `--root`/`--runroot` for a build storage of its own. */
  podman: string[] = [],
): Promise<string> {
  const onHost = join(device.root, TARBALL_IN_DEVICE);
  if (!existsSync(onHost)) await copyFile(await appTarball(), onHost);
  const changes = [
    'CMD ["/bin/tinyapp"]',
    'ENV PATH=/bin',
    ...Object.entries(behaviour).map(([key, value]) => `ENV ${key}=${value}`),
  ].flatMap((change) => ['--change', change]);
  const out = await device.exec([
    'podman',
    ...podman,
    'import',
    '-q',
    ...changes,
    TARBALL_IN_DEVICE,
    reference,
  ]);
  const id = /([0-9a-f]{64})/.exec(out)?.[1];
  if (!id) throw new Error(`podman import ${reference}: no image id in ${out.trim()}`);
  return id;
}
