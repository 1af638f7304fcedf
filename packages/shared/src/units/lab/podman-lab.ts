import { copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildOnce, labCacheDir, withLock } from './cache.js';
import { type CommandResult, run, runOk } from './run.js';

/** The one local image every lab container runs: busybox-static, imported (no registry here). */
export const LAB_IMAGE = 'localhost/podfleet-lab/busybox:1';
const BUSYBOX = '/bin/busybox';

export interface PodmanLab {
  /** Runs the host's podman against the lab's private storage. */
  podman(args: readonly string[]): Promise<CommandResult>;
  podmanOk(args: readonly string[]): Promise<CommandResult>;
  /** Serialises work on containers with fixed names (two test runs may share the cache). */
  exclusive<T>(work: () => Promise<T>): Promise<T>;
  /** Directory for bind-mount sources, which podman create wants to exist. */
  scratchDir: string;
}

/**
 * Podman 4.3 on a private store under the cache dir: its own graph root, run root, tmp dir, file
 * locks and network config, so the host's images, containers and SHM locks are never touched.
 * Given as config files rather than --root/--runroot flags because `generate systemd --new` copies
 * the global flags of the create command into ExecStart, which would then differ from ours.
 */
export async function openPodmanLab(): Promise<PodmanLab> {
  const dir = join(labCacheDir(), 'podman-4.3');
  await mkdir(dir, { recursive: true });
  const env = await writeConfig(dir);
  const podman = (args: readonly string[]) => run('podman', args, { env });
  const podmanOk = (args: readonly string[]) => runOk('podman', args, { env });
  const scratchDir = join(dir, 'scratch');
  await mkdir(scratchDir, { recursive: true });
  const lab: PodmanLab = {
    podman,
    podmanOk,
    exclusive: (work) => withLock(join(dir, 'containers.lock'), work),
    scratchDir,
  };
  await withLock(join(dir, 'image.lock'), async () => {
    if ((await podman(['image', 'exists', LAB_IMAGE])).code === 0) return;
    const rootfs = await buildOnce(join(labCacheDir(), 'busybox-rootfs'), fillBusyboxRootfs);
    const tarball = join(dir, 'busybox-rootfs.tar');
    await runOk('tar', ['-C', rootfs, '--exclude', './.podfleet-complete', '-cf', tarball, '.']);
    // An imported image has no CMD; specs without a command need one for podman create.
    await podmanOk(['import', '--change', 'CMD ["/bin/sh"]', tarball, LAB_IMAGE]);
    await rm(tarball, { force: true });
  });
  return lab;
}

/** The lab image's manifest digest, which a `repo@sha256:…` reference can name once tagged. */
export async function labImageDigest(lab: PodmanLab): Promise<string> {
  const { stdout } = await lab.podmanOk(['image', 'inspect', '--format', '{{.Digest}}', LAB_IMAGE]);
  return stdout.trim();
}

async function writeConfig(dir: string): Promise<NodeJS.ProcessEnv> {
  const containersConf = join(dir, 'containers.conf');
  const storageConf = join(dir, 'storage.conf');
  // runc, not crun (crun fails on this kind of host: hybrid cgroups); runc refuses rlimits above
  // the hard limits, so the default ulimits stay at or below them.
  await writeIfChanged(
    containersConf,
    [
      '[containers]',
      'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
      '[engine]',
      'runtime = "runc"',
      // The default SHM lock segment is shared by every libpod store of the host; file locks live
      // under tmp_dir, which is ours.
      'lock_type = "file"',
      `tmp_dir = "${join(dir, 'tmp')}"`,
      'events_logger = "file"',
      '[network]',
      `network_config_dir = "${join(dir, 'networks')}"`,
      '',
    ].join('\n'),
  );
  await writeIfChanged(
    storageConf,
    [
      '[storage]',
      // vfs copies layers into plain directories: unlike overlay, which bind-mounts its own home
      // and leaves that mount behind, it never mounts anything on the host.
      'driver = "vfs"',
      `graphroot = "${join(dir, 'root')}"`,
      `runroot = "${join(dir, 'runroot')}"`,
      '',
    ].join('\n'),
  );
  return { ...process.env, CONTAINERS_CONF: containersConf, CONTAINERS_STORAGE_CONF: storageConf };
}

async function writeIfChanged(path: string, contents: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current !== contents) await writeFile(path, contents);
}

async function fillBusyboxRootfs(rootfs: string): Promise<void> {
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  const { stdout } = await runOk(BUSYBOX, ['--list']);
  for (const applet of stdout.split('\n').filter((name) => /^[\w.-]+$/.test(name))) {
    if (applet !== 'busybox') await symlink('busybox', join(rootfs, 'bin', applet));
  }
}
