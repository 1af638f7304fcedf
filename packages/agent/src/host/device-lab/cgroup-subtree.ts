import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Every lab device's cgroups sit under this name, in each hierarchy. */
export const LAB_CGROUP = 'podfleet-lab';
const CGROUP = '/sys/fs/cgroup';

/**
 * Where a device's own cgroups go. The rule this machine teaches (device-lab.md): a systemd started
 * from the root cgroup takes every process of the machine into its own scope, so a device boots
 * only from a subtree of its own, in cgroup2 (which its systemd manages) and, on a hybrid host, in
 * the v1 name=systemd hierarchy too (where nspawn puts its supervisor).
 */
export interface CgroupLayout {
  /** The cgroup2 mount: /sys/fs/cgroup/unified (hybrid) or /sys/fs/cgroup (unified). */
  unified: string;
  /** The v1 name=systemd mount on a hybrid host. */
  legacy?: string;
}

export function cgroupLayout(): CgroupLayout {
  if (existsSync(join(CGROUP, 'unified/cgroup.procs'))) {
    const legacy = join(CGROUP, 'systemd');
    return { unified: join(CGROUP, 'unified'), ...(existsSync(legacy) ? { legacy } : {}) };
  }
  if (existsSync(join(CGROUP, 'cgroup.controllers'))) return { unified: CGROUP };
  throw new Error('no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified');
}

/** The device's cgroup in each hierarchy, cgroup2 first. */
export function deviceCgroups(name: string, layout = cgroupLayout()): string[] {
  return [layout.unified, ...(layout.legacy ? [layout.legacy] : [])].map((root) =>
    join(root, LAB_CGROUP, name),
  );
}

/**
 * Where a command from the host joins the device before `nsenter`: below the container's payload
 * cgroup, so the device's systemd can move what it starts (podman's scopes) into its own slices.
 */
export function execCgroup(name: string, layout = cgroupLayout()): string {
  return join(layout.unified, LAB_CGROUP, name, 'payload', 'dev-exec');
}

export async function createDeviceCgroups(name: string): Promise<string[]> {
  const cgroups = deviceCgroups(name);
  for (const cgroup of cgroups) await mkdir(cgroup, { recursive: true });
  return cgroups;
}

/**
 * Kills whatever still runs in the device's cgroups (cgroup.kill: the whole subtree at once) and
 * removes them, deepest first; then the lab's parent cgroup if no other device uses it.
 */
export async function removeDeviceCgroups(name: string): Promise<void> {
  const layout = cgroupLayout();
  const [unified, legacy] = deviceCgroups(name, layout);
  if (unified && existsSync(unified)) {
    await writeFile(join(unified, 'cgroup.kill'), '1');
    await waitUntilEmpty(unified);
  }
  // v1 has no cgroup.kill; its processes are the cgroup2 ones, gone by now.
  for (const cgroup of [unified, legacy]) if (cgroup) await removeTree(cgroup);
  for (const root of [layout.unified, layout.legacy]) {
    if (root) await rmdir(join(root, LAB_CGROUP)).catch(() => undefined); // busy: another run's device
  }
}

/** Synchronous last resort for a test process on its way out: kill the device's processes. */
export function killDeviceNow(name: string): void {
  try {
    writeFileSync(join(deviceCgroups(name)[0]!, 'cgroup.kill'), '1');
  } catch {
    // Already gone.
  }
}

/** Names of the devices that have cgroups on this machine, from any run. */
export async function labDeviceNames(): Promise<string[]> {
  const layout = cgroupLayout();
  const names = new Set<string>();
  for (const root of [layout.unified, layout.legacy]) {
    if (!root) continue;
    const entries = await readdir(join(root, LAB_CGROUP), { withFileTypes: true }).catch(() => []);
    for (const entry of entries) if (entry.isDirectory()) names.add(entry.name);
  }
  return [...names].sort();
}

async function waitUntilEmpty(cgroup: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const events = await readFile(join(cgroup, 'cgroup.events'), 'utf8').catch(() => '');
    if (!/^populated 1$/m.test(events)) return;
    if (Date.now() > deadline) throw new Error(`${cgroup}: processes left after cgroup.kill`);
    await sleep(50);
  }
}

async function removeTree(cgroup: string): Promise<void> {
  if (!existsSync(cgroup)) return;
  const entries = await readdir(cgroup, { withFileTypes: true });
  for (const entry of entries) if (entry.isDirectory()) await removeTree(join(cgroup, entry.name));
  for (let attempt = 0; ; attempt++) {
    try {
      await rmdir(cgroup);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      // EBUSY while the last exiting processes leave it.
      if (code !== 'EBUSY' || attempt >= 50) throw new Error(`rmdir ${cgroup}: ${code}`);
      await sleep(100);
    }
  }
}
