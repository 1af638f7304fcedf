import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildOnce, labCacheDir } from './cache.js';
import { runOk } from './run.js';

const MIRROR = 'http://deb.debian.org/debian';
/** Quadlet's generator inside the rootfs (Debian 13 ships Podman 5.4). */
export const QUADLET = '/usr/libexec/podman/quadlet';

/**
 * A Debian 13 (trixie) rootfs with Podman installed: the real Quadlet, which Debian 12's Podman 4.3
 * lacks. Built with debootstrap the first time (about 40 s), then reused from the cache.
 */
export async function trixieRootfs(): Promise<string> {
  return buildOnce(join(labCacheDir(), 'rootfs-trixie'), async (rootfs) => {
    await runOk('debootstrap', ['--variant=minbase', 'trixie', rootfs, MIRROR]);
    await runOk(
      'chroot',
      [rootfs, 'apt-get', 'install', '-y', '--no-install-recommends', 'podman'],
      {
        env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive' },
      },
    );
    await runOk('chroot', [rootfs, 'apt-get', 'clean']);
    if (!existsSync(join(rootfs, QUADLET)))
      throw new Error(`${rootfs}: no ${QUADLET} after install`);
  });
}
