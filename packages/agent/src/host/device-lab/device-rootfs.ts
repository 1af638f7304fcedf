import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildOnce, hostRun, labCacheDir } from './lab-cache.js';

/**
 * The Debian releases a device can run: trixie (13) has systemd 257 and Podman 5.4 with Quadlet;
 * bookworm (12) has systemd 252 and Podman 4.3, which has no Quadlet (the agent writes `service`
 * units there).
 */
export type DeviceSuite = 'trixie' | 'bookworm';
const MIRROR = process.env.PODFLEET_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';

// debootstrap cannot resolve virtual packages: podman's container-network-stack needs netavark
// (and aardvark-dns) by name. nftables: netavark's firewall for the bridge network.
// openssh-server: what `podfleet enroll ssh` reaches a device through. Rootless Podman for
// user-scope services (docs/device-lab.md, "User scope"): uidmap (setuid newuidmap/newgidmap for
// the subordinate ids), dbus-user-session and libpam-systemd (the user's bus, which Podman's
// systemd cgroup manager talks to, and the user manager's PAM session).
const PACKAGES = [
  'systemd', 'systemd-sysv', 'dbus', 'podman', 'netavark', 'aardvark-dns', 'runc', 'crun',
  'conmon', 'iproute2', 'procps', 'iptables', 'nftables', 'openssh-server', 'sudo',
  'uidmap', 'dbus-user-session', 'libpam-systemd',
]; // prettier-ignore

/** A rootless container's network: pasta in Podman 5 (trixie), slirp4netns in Podman 4.3. */
const SUITE_PACKAGES: Record<DeviceSuite, string[]> = {
  trixie: ['passt'],
  bookworm: ['slirp4netns'],
};

/**
 * Podman settings this machine needs inside the device (device-lab NOTES.md):
 * runc, since crun cannot set RLIMIT_MEMLOCK here; rlimits within the host's hard limits (no
 * CAP_SYS_RESOURCE); no pids limit, since the device's cgroup2 has no pids controller; and no
 * session keyring, which units are not allowed to create.
 */
const CONTAINERS_CONF = `# written by podfleet's device lab
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
pids_limit = 0
keyring = false
[engine]
runtime = "runc"
`;

/** ssh.service's checks, preceded by making the host keys this device does not have yet. */
const SSH_HOST_KEYS_DROP_IN = `# written by podfleet's device lab: host keys per device, made at its first boot
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
`;

const TUN_MODE = `# written by podfleet's device lab: what udev does on a real device
z /dev/net/tun 0666 root root -
`;

/** Files every booted device needs; their absence means the build went wrong. */
const REQUIRED: Record<DeviceSuite, string[]> = {
  trixie: [
    'usr/lib/systemd/systemd',
    'usr/bin/podman',
    'usr/libexec/podman/quadlet',
    'usr/sbin/sshd',
    'usr/bin/newuidmap',
    'usr/bin/pasta',
  ],
  bookworm: [
    'usr/lib/systemd/systemd',
    'usr/bin/podman',
    'usr/sbin/sshd',
    'usr/bin/newuidmap',
    'usr/bin/slirp4netns',
  ],
};

/**
 * A Debian rootfs with systemd and Podman (trixie by default), built with debootstrap the first
 * time (about 45 s) and reused read-only from the cache after that. The name carries a hash of
 * the recipe (suite, packages, and the code that configures it), so a changed recipe builds anew.
 */
export async function deviceRootfs(suite: DeviceSuite = 'trixie'): Promise<string> {
  const recipe = createHash('sha256')
    .update(
      [
        suite,
        ...packagesFor(suite),
        CONTAINERS_CONF,
        SSH_HOST_KEYS_DROP_IN,
        configure.toString(),
      ].join('\n'),
    )
    .digest('hex')
    .slice(0, 10);
  return buildOnce(join(labCacheDir(), `device-${suite}-${recipe}`), (rootfs) =>
    buildRootfs(suite, rootfs),
  );
}

function packagesFor(suite: DeviceSuite): string[] {
  return [...PACKAGES, ...SUITE_PACKAGES[suite]];
}

async function buildRootfs(suite: DeviceSuite, rootfs: string): Promise<void> {
  const include = `--include=${packagesFor(suite).join(',')}`;
  try {
    await hostRun(
      ['debootstrap', '--variant=minbase', include, suite, rootfs, MIRROR],
      20 * 60_000,
    );
  } catch (error) {
    // debootstrap's own log says which package failed.
    const tail = await readFile(join(rootfs, 'debootstrap/debootstrap.log'), 'utf8').catch(
      () => '',
    );
    const last = tail.trim().split('\n').slice(-3).join(' | ');
    throw new Error(`${(error as Error).message}${last ? ` (debootstrap.log: ${last})` : ''}`);
  }
  await configure(rootfs);
  const missing = REQUIRED[suite].filter((path) => !existsSync(join(rootfs, path)));
  if (missing.length > 0) throw new Error(`${rootfs}: missing ${missing.join(', ')} after install`);
}

async function configure(rootfs: string): Promise<void> {
  // systemd-modules-load fails in a container and leaves the device `degraded`.
  const modulesLoad = join(rootfs, 'etc/systemd/system/systemd-modules-load.service');
  await rm(modulesLoad, { force: true });
  await symlink('/dev/null', modulesLoad);
  const conf = join(rootfs, 'etc/containers/containers.conf.d');
  await mkdir(conf, { recursive: true });
  await writeFile(join(conf, '50-device.conf'), CONTAINERS_CONF);
  // Empty: systemd takes the id nspawn gives each boot (--uuid) instead of debootstrap's. It
  // falls back to D-Bus's id first, which dbus's postinst wrote: make that one the same file.
  await writeFile(join(rootfs, 'etc/machine-id'), '');
  await rm(join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
  await symlink('/etc/machine-id', join(rootfs, 'var/lib/dbus/machine-id'));
  // None: the device is called by its machine name (nspawn sets it), not the host's copied name.
  await rm(join(rootfs, 'etc/hostname'), { force: true });
  // Debian makes sshd's host keys in openssh-server's postinst, so every device booted from this
  // cache would share them; its ssh.service only checks them (`sshd -t`), and trixie's
  // sshd-keygen.service is not enabled (and runs on ConditionFirstBoot only). So they go, and
  // ssh.service makes the missing ones (`ssh-keygen -A`) at each boot, into the device's own root.
  await hostRun(['sh', '-c', 'rm -f "$1"/etc/ssh/ssh_host_*', 'sh', rootfs]);
  const sshDropIn = join(rootfs, 'etc/systemd/system/ssh.service.d');
  await mkdir(sshDropIn, { recursive: true });
  await writeFile(join(sshDropIn, '10-host-keys.conf'), SSH_HOST_KEYS_DROP_IN);
  // udev makes /dev/net/tun 0666 on a real device (50-udev-default.rules); a container has no
  // udev and nspawn makes it 0600, where rootless Podman's pasta fails (`Failed to open()
  // /dev/net/tun: Permission denied`). systemd-tmpfiles applies the same mode at boot.
  await mkdir(join(rootfs, 'etc/tmpfiles.d'), { recursive: true });
  await writeFile(join(rootfs, 'etc/tmpfiles.d/podfleet-lab-tun.conf'), TUN_MODE);
  // The downloaded .debs are 80 MB nobody reads again.
  await hostRun(['find', join(rootfs, 'var/cache/apt/archives'), '-name', '*.deb', '-delete']);
}
