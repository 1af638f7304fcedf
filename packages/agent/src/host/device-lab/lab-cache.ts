import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { commandError, runCommand } from '../systemd-podman-host.js';

/** What is slow to build (the device rootfs, the test app) lives here, outside the clone. */
export function labCacheDir(): string {
  return process.env.PODFLEET_TEST_CACHE ?? '/var/tmp/podfleet-test-cache';
}

const COMPLETE = '.podfleet-complete';
const LOCK_TIMEOUT_MS = 20 * 60_000;

/** Runs a host command (argv, no shell); a non-zero exit is a one-line error naming it. */
export async function hostRun(argv: readonly string[], timeoutMs = 120_000): Promise<string> {
  const result = await runCommand(argv, { timeoutMs });
  if (result.code !== 0) throw commandError(argv, result);
  return result.stdout;
}

/**
 * `dir` built once: `build` fills `DIR.partial`, renamed to `dir` once a marker says it is
 * complete, under a lock file so that two test runs sharing the cache never build it together.
 * A run killed halfway leaves only the partial dir, rebuilt next time.
 */
export async function buildOnce(
  dir: string,
  build: (partial: string) => Promise<void>,
): Promise<string> {
  if (existsSync(join(dir, COMPLETE))) return dir;
  return withLock(`${dir}.lock`, async () => {
    if (existsSync(join(dir, COMPLETE))) return dir;
    const partial = `${dir}.partial`;
    await removeTree(partial);
    await removeTree(dir);
    await mkdir(partial, { recursive: true });
    await build(partial);
    await writeFile(join(partial, COMPLETE), `${new Date().toISOString()}\n`);
    await rename(partial, dir);
    return dir;
  });
}

/** Holds `path` (created O_EXCL with our pid) while `work` runs; a dead holder's lock is taken over. */
async function withLock<T>(path: string, work: () => Promise<T>): Promise<T> {
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(await readFile(path, 'utf8').catch(() => ''));
      // No pid yet: being taken right now, or its taker died before writing it.
      const abandoned = owner > 0 ? !isAlive(owner) : await olderThan(path, 10_000);
      if (abandoned) await unlink(path).catch(() => undefined);
      else if (Date.now() > deadline) throw new Error(`${path}: still held by pid ${owner}`);
      else await sleep(200);
    }
  }
  try {
    return await work();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  return info !== undefined && Date.now() - info.mtimeMs > ms;
}

/**
 * Deletes a tree we built, after unmounting what a killed debootstrap may have left mounted in it
 * (proc, sys): a recursive delete would otherwise walk into the host's /proc and /sys.
 */
export async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  for (const mountPoint of (await mountsUnder(dir)).reverse()) {
    await hostRun(['umount', '--lazy', mountPoint]);
  }
  if ((await mountsUnder(dir)).length > 0)
    throw new Error(`${dir}: still has mounts, not deleting`);
  await rm(dir, { recursive: true, force: true });
}

/** Mount points at or below `dir`, outermost first, from /proc/mounts (blanks come as \040). */
export async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile('/proc/mounts', 'utf8');
  return table
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((field): field is string => field !== undefined)
    .map((field) =>
      field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))),
    )
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`));
}
