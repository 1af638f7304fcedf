import { copyFile, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { deviceRootfs } from './device-rootfs.js';
import { buildOnce, hostRun, labCacheDir } from './lab-cache.js';
import type { LabDevice } from './lab-device.js';

/** A unit of the image's own, started by the container's systemd at boot. */
export const IMAGE_UNIT = 'hello.service';
const TARBALL_IN_DEVICE = '/var/tmp/podfleet-systemd-image.tar';

/**
 * An image whose entrypoint is systemd (Podman in Action §7.1, `--systemd=always`): the device
 * rootfs itself (systemd 257, Debian 13) without docs and Podman, plus `hello.service` enabled in
 * multi-user.target. No registry is reachable, so it is a tarball for `podman import`, built once
 * from the cached rootfs (about 330 MB).
 */
export async function systemdImageTarball(): Promise<string> {
  const rootfs = await deviceRootfs();
  const recipe = createHash('sha256')
    .update(JSON.stringify([UNIT_TEXT, EXCLUDED]))
    .digest('hex');
  const name = `systemd-image-${basename(rootfs)}-${recipe.slice(0, 8)}`;
  const dir = await buildOnce(join(labCacheDir(), name), async (partial) => {
    const extra = join(partial, 'extra');
    await mkdir(join(extra, WANTS), { recursive: true });
    await writeFile(join(extra, UNIT_DIR, IMAGE_UNIT), UNIT_TEXT);
    await symlink(`../${IMAGE_UNIT}`, join(extra, WANTS, IMAGE_UNIT));
    const tar = join(partial, 'image.tar');
    // The extra files by name: their directories are the rootfs's (a tar member twice fails
    // `podman import` with "duplicates of file paths not supported").
    const added = [join(UNIT_DIR, IMAGE_UNIT), join(WANTS, IMAGE_UNIT)].map((path) => `./${path}`);
    const excluded = EXCLUDED.map((path) => `--exclude=./${path}`);
    await hostRun(
      ['tar', ...excluded, '-C', rootfs, '-cf', tar, '.', '-C', extra, ...added],
      300_000,
    );
    await rm(extra, { recursive: true });
  });
  return join(dir, 'image.tar');
}

const UNIT_DIR = 'etc/systemd/system';
const WANTS = `${UNIT_DIR}/multi-user.target.wants`;
const UNIT_TEXT = [
  '[Unit]',
  'Description=A service of the container',
  '[Service]',
  "ExecStart=/bin/sh -c 'echo hello from the container; exec sleep infinity'",
  '[Install]',
  'WantedBy=multi-user.target',
  '',
].join('\n');
/** Not needed to boot systemd: documentation, Podman itself, apt's caches. */
const EXCLUDED = [
  'usr/share/doc',
  'usr/share/man',
  'usr/share/locale',
  'usr/bin/podman',
  'usr/libexec/podman',
  'var/cache/apt',
  'var/lib/apt/lists',
];

/** Imports the systemd image into the device's Podman as `reference`; the new image id. */
export async function importSystemdImage(device: LabDevice, reference: string): Promise<string> {
  const onHost = join(device.root, TARBALL_IN_DEVICE);
  await copyFile(await systemdImageTarball(), onHost);
  const out = await device.exec(
    ['podman', 'import', '-q', '--change', 'CMD ["/sbin/init"]', TARBALL_IN_DEVICE, reference],
    300_000,
  );
  await rm(onHost, { force: true });
  const id = /([0-9a-f]{64})/.exec(out)?.[1];
  if (!id) throw new Error(`podman import ${reference}: no image id in ${out.trim()}`);
  return id;
}
