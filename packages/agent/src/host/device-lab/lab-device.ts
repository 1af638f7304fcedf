import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { commandError, runCommand, type CommandRunner } from '../systemd-podman-host.js';
import {
  LAB_CGROUP,
  createDeviceCgroups,
  execCgroup,
  killDeviceNow,
  labDeviceNames,
  removeDeviceCgroups,
} from './cgroup-subtree.js';
import { deviceRootfs, type DeviceSuite } from './device-rootfs.js';
import {
  connectDevice,
  deviceLink,
  removeStaleLinks,
  untilLinkGone,
  type DeviceLink,
} from './device-network.js';
import { hostRun, isAlive, labCacheDir, removeTree } from './lab-cache.js';
import { checkLabHost } from './lab-host.js';

export interface LabDeviceOptions {
  /**
   * The device gets a network namespace of its own, with only loopback (default). Its ports and
   * Podman's bridge then stay off the host: in the host's namespace, netavark fails on a read-only
   * /proc/sys and leaves a podman0 behind (device-lab NOTES.md).
   */
  privateNetwork?: boolean;
  /**
   * A veth pair to the host (device-network.ts): the device reaches `link.hostAddress`, where the
   * test runs its broker and registry. Implies a private network.
   */
  link?: boolean;
  /**
   * The device keeps its files across reboots: it boots from a copy of the rootfs (deleted at
   * shutdown) instead of a tmpfs overlay, with Podman's storage in it. For `reboot()`.
   */
  persistent?: boolean;
  /** More systemd-nspawn arguments, e.g. `--bind-ro=/usr/bin/node:/usr/local/bin/node`. */
  nspawnArgs?: string[];
  bootTimeoutMs?: number;
  /** The Debian release it runs (device-rootfs.ts): trixie unless told. */
  suite?: DeviceSuite;
}

/** The environment of a command in the device: nothing of the test process leaks in. */
const DEVICE_ENV = [
  'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  'HOME=/root',
  'LANG=C.UTF-8',
];
const NAME_PREFIX = 'pfdev';
let devicesBooted = 0;

/**
 * Runs argv inside a device: first into the device's cgroup (so its systemd can adopt what the
 * command starts), then into all its namespaces. The tiny shell only writes its own pid; the
 * command and its arguments pass through as positional parameters, never parsed.
 */
function deviceRunner(name: string, leader: number): CommandRunner {
  const enter = ['nsenter', '-t', String(leader), '-a', 'env', '-i', ...DEVICE_ENV];
  const joinCgroup = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"';
  return (argv, options) => {
    const cgroup = execCgroup(name);
    mkdirSync(cgroup, { recursive: true });
    return runCommand(['sh', '-c', joinCgroup, 'sh', cgroup, ...enter, ...argv], options);
  };
}

/** How a device boots, every time: reboots use the same plan. */
interface BootPlan {
  name: string;
  uuid: string;
  rootfs: string;
  /** The copy a persistent device boots from. */
  persistentRoot?: string;
  link?: DeviceLink;
  options: LabDeviceOptions;
}

/** A booted device: its systemd, seen from the host. */
export class LabDevice {
  /** The device's filesystem as the host sees it (its mount namespace, through procfs). */
  readonly root: string;
  /** Runs argv in the device (for SystemdPodmanHost's `run`). */
  readonly run: CommandRunner;
  private stopped = false;
  private readonly onExit = () => killDeviceNow(this.name);

  readonly name: string;
  /** The device's addresses on its veth pair to the host (`link: true`). */
  readonly link: DeviceLink | undefined;

  constructor(
    private readonly plan: BootPlan,
    /** The host pid of the device's PID 1 (systemd). */
    readonly leader: number,
    private readonly nspawn: ChildProcess,
    private readonly log: string,
    /** From spawning nspawn to `systemctl is-system-running` saying running. */
    readonly bootMs: number,
  ) {
    this.name = plan.name;
    this.link = plan.link;
    this.root = `/proc/${leader}/root`;
    this.run = deviceRunner(this.name, leader);
    process.once('exit', this.onExit);
  }

  /** Runs argv in the device; its stdout, or a one-line error. */
  async exec(argv: string[], timeoutMs = 60_000): Promise<string> {
    const result = await this.run(argv, { timeoutMs });
    if (result.code !== 0) throw commandError(argv, result);
    return result.stdout;
  }

  /** Connects to a TCP port in the device's network namespace and reads until it closes. */
  connect(port: number, timeoutSeconds = 10): Promise<string> {
    const read = 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat <&3';
    return this.exec(['timeout', String(timeoutSeconds), 'bash', '-c', read, 'bash', String(port)]);
  }

  /** poweroff, then whatever is left is killed with its cgroups, also after a failed test. */
  async shutdown(): Promise<void> {
    if (!(await this.powerOff())) return;
    await removeDevice(this.name);
    if (this.plan.persistentRoot) await removeTree(this.plan.persistentRoot);
  }

  /**
   * poweroff and boot again (what systemd-nspawn@.service does on exit status 133): same name,
   * machine id, files (with `persistent`) and addresses. This object is done; use the one returned.
   */
  async reboot(): Promise<LabDevice> {
    if (!(await this.powerOff())) throw new Error(`device ${this.name} was shut down`);
    await removeDevice(this.name);
    return spawnDevice(this.plan);
  }

  /**
   * Pulls the plug: every process of the device is killed at once (cgroup.kill: no shutdown, no
   * sync, no unit stopped), then the device boots again from the same plan, as after power comes
   * back. What the device had written is in the host's page cache, which survives: the cut loses
   * process state, not unsynced data (fsync ordering is proven by durable-file.int.test.ts).
   * This object is done; use the one returned (its `bootMs` is spawn → running).
   */
  async powerCut(): Promise<LabDevice> {
    if (this.stopped) throw new Error(`device ${this.name} was shut down`);
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    await removeDevice(this.name);
    await exited(this.nspawn, 10_000);
    await rm(this.log, { force: true });
    // The kernel deletes the link with the device's network namespace, a moment after its last
    // process: the same name cannot be made again before.
    if (this.plan.link) await untilLinkGone(this.plan.link);
    return spawnDevice(this.plan);
  }

  /** `systemctl poweroff` and the wait for nspawn to exit; false when it was already done. */
  private async powerOff(): Promise<boolean> {
    if (this.stopped) return false;
    this.stopped = true;
    process.removeListener('exit', this.onExit);
    await this.run(['systemctl', 'poweroff'], { timeoutMs: 10_000 }).catch(() => undefined);
    await exited(this.nspawn, 20_000);
    await rm(this.log, { force: true });
    return true;
  }
}

/**
 * Boots a device: systemd-nspawn of the cached trixie rootfs, from a cgroup subtree of its own.
 * `--volatile=overlay` puts a tmpfs overlay over the read-only rootfs (nothing to copy, nothing
 * left on disk), and Podman's storage gets a tmpfs of its own (overlayfs cannot use an overlay as
 * its upper layer).
 */
export async function bootDevice(options: LabDeviceOptions = {}): Promise<LabDevice> {
  await checkLabHost();
  const rootfs = await deviceRootfs(options.suite);
  await removeStaleDevices();
  const index = ++devicesBooted;
  const name = `${NAME_PREFIX}-${process.pid}-${index}`;
  const plan: BootPlan = { name, uuid: randomUUID(), rootfs, options };
  if (options.link) plan.link = deviceLink(process.pid, index);
  if (options.persistent) {
    // cp -a: 1.0 s for the 365 MB rootfs on this disk (docs/device-lab.md).
    plan.persistentRoot = join(labCacheDir(), 'devices', name);
    await mkdir(join(labCacheDir(), 'devices'), { recursive: true });
    await hostRun(['cp', '-a', '--reflink=auto', rootfs, plan.persistentRoot]);
  }
  try {
    return await spawnDevice(plan);
  } catch (error) {
    if (plan.persistentRoot) await removeTree(plan.persistentRoot);
    throw error;
  }
}

async function spawnDevice(plan: BootPlan): Promise<LabDevice> {
  const { name, options } = plan;
  const cgroups = await createDeviceCgroups(name);
  const logs = join(labCacheDir(), 'logs');
  await mkdir(logs, { recursive: true });
  const log = join(logs, `${name}.log`);
  const storage = plan.persistentRoot
    ? [] // Podman's overlay storage on the copy's own filesystem, kept across reboots.
    : ['--volatile=overlay', '--tmpfs=/var/lib/containers'];
  const args = [
    '-q', '--boot', `--directory=${plan.persistentRoot ?? plan.rootfs}`, `--machine=${name}`,
    `--uuid=${plan.uuid}`,
    // No machined and no system bus on the host: nspawn registers nothing and stays in our cgroup.
    '--register=no', '--keep-unit', '--console=pipe',
    // Podman and runc inside: every capability, and the keyring and bpf syscalls (device cgroup).
    '--capability=all', '--system-call-filter=@keyring bpf',
    ...storage,
    ...(options.privateNetwork === false && !plan.link ? [] : ['--private-network']),
    ...(options.nspawnArgs ?? []),
  ]; // prettier-ignore
  const started = Date.now();
  const fd = openSync(log, 'w');
  // The shell moves itself into the device's cgroups before exec: nspawn and all it starts are born
  // there, never in the host's root cgroup. It refuses to go on unless its cgroup2 path says so.
  const enterCgroups = [
    'for c in $PF_CGROUPS; do echo $$ > "$c/cgroup.procs" || exit 1; done',
    `grep -q '^0::/${LAB_CGROUP}/' /proc/$$/cgroup || { echo 'not in the device cgroup' >&2; exit 1; }`,
    'exec "$@"',
  ].join('\n');
  const nspawn = spawn('sh', ['-c', enterCgroups, 'sh', 'systemd-nspawn', ...args], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      PF_CGROUPS: cgroups.join(' '),
      // The device sees a pure cgroup2 tree (its systemd and Podman need one).
      SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1',
    },
  });
  closeSync(fd);
  nspawn.unref();
  try {
    const deadline = started + (options.bootTimeoutMs ?? 60_000);
    const leader = await findLeader(nspawn, log, deadline);
    // Linked while it boots: what starts before the link is up retries, as on a real device.
    if (plan.link) await connectDevice(plan.link, leader);
    await untilRunning(name, deviceRunner(name, leader), nspawn, log, deadline);
    return new LabDevice(plan, leader, nspawn, log, Date.now() - started);
  } catch (error) {
    nspawn.kill('SIGKILL');
    await removeDevice(name);
    throw error;
  }
}

/** Devices left by a run that died: their cgroups named a pid that is gone. */
export async function removeStaleDevices(): Promise<string[]> {
  const stale = (await labDeviceNames()).filter(ownerGone);
  for (const name of stale) await removeDevice(name);
  // Their console logs too (a boot that failed keeps its log until then, for the error's path),
  // the roots of persistent devices, and the host ends of links that never moved in.
  const logs = join(labCacheDir(), 'logs');
  for (const log of await readdir(logs).catch(() => [])) {
    if (ownerGone(log)) await rm(join(logs, log), { force: true });
  }
  const roots = join(labCacheDir(), 'devices');
  for (const root of await readdir(roots).catch(() => [])) {
    if (ownerGone(root)) await removeTree(join(roots, root));
  }
  await removeStaleLinks(isAlive);
  return stale;
}

/** Whether the test process that booted a device (its pid is in the name) has gone. */
function ownerGone(name: string): boolean {
  const owner = new RegExp(`^${NAME_PREFIX}-(\\d+)-`).exec(name)?.[1];
  return owner !== undefined && !isAlive(Number(owner));
}

async function removeDevice(name: string): Promise<void> {
  await removeDeviceCgroups(name);
  // nspawn cannot remove its propagation directory itself.
  await rm(join('/run/systemd/nspawn/propagate', name), { recursive: true, force: true });
}

/** The device's PID 1: the `systemd` child of nspawn (recipes.sh: pgrep -P NSPAWN -x systemd). */
async function findLeader(nspawn: ChildProcess, log: string, deadline: number): Promise<number> {
  for (;;) {
    if (nspawn.exitCode !== null || nspawn.signalCode !== null) throw await bootFailure(log);
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      // pid (comm) state ppid …
      const match = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (match?.[1] === 'systemd' && Number(match[2]) === nspawn.pid) return Number(entry);
    }
    if (Date.now() > deadline) throw new Error(`device: no systemd under nspawn ${nspawn.pid}`);
    await sleep(20);
  }
}

/** Waits for `running`; `degraded` fails with the failed units, since it hides a broken device. */
async function untilRunning(
  name: string,
  run: CommandRunner,
  nspawn: ChildProcess,
  log: string,
  deadline: number,
): Promise<void> {
  for (;;) {
    if (nspawn.exitCode !== null || nspawn.signalCode !== null) throw await bootFailure(log);
    const result = await run(['systemctl', 'is-system-running'], { timeoutMs: 10_000 });
    const state = result.stdout.trim();
    if (state === 'running') return;
    if (state === 'degraded') {
      const failed = await run(['systemctl', '--failed', '--no-legend', '--plain'], {
        timeoutMs: 10_000,
      });
      throw new Error(`device ${name} degraded: ${failed.stdout.trim().replace(/\s+/g, ' ')}`);
    }
    if (Date.now() > deadline) throw new Error(`device ${name} not running: ${state}`);
    await sleep(50);
  }
}

async function bootFailure(log: string): Promise<Error> {
  const text = await readFile(log, 'utf8').catch(() => '');
  const last = text.trim().split('\n').slice(-3).join(' | ');
  return new Error(`systemd-nspawn exited during boot: ${last || 'no output'} (${log})`);
}

function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
