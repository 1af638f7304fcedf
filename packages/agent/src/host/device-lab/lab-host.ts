import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { cgroupLayout } from './cgroup-subtree.js';

/** What the lab runs on the host, and the Debian package that brings it. */
const PROGRAMS: Array<[program: string, pkg: string]> = [
  ['systemd-nspawn', 'systemd-container'],
  ['debootstrap', 'debootstrap'],
  ['nsenter', 'util-linux'],
  ['gcc', 'gcc'],
  ['tar', 'tar'],
];

/**
 * Fails with one line naming every missing piece (and its apt package) instead of letting a test
 * skip or fail somewhere deep: a device that cannot boot here must say why.
 */
export async function checkLabHost(): Promise<void> {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push('must run as root (nspawn, cgroups, debootstrap)');
  for (const [program, pkg] of PROGRAMS) {
    if (!onPath(program)) problems.push(`${program} not found (apt-get install ${pkg})`);
  }
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libc.a') && !existsSync('/usr/lib/libc.a')) {
    problems.push('no static libc for the test app (apt-get install libc6-dev)');
  }
  const busybox = await staticBusybox();
  if (busybox) problems.push(busybox);
  try {
    cgroupLayout();
  } catch (error) {
    problems.push((error as Error).message);
  }
  const filesystems = await readFile('/proc/filesystems', 'utf8').catch(() => '');
  if (!/\toverlay$/m.test(filesystems))
    problems.push('kernel has no overlayfs (--volatile=overlay)');
  if (problems.length > 0) throw new Error(`device lab cannot run here: ${problems.join('; ')}`);
}

/** The host's busybox goes into the test image, which has no libc: it must be static. */
export const BUSYBOX = '/bin/busybox';

async function staticBusybox(): Promise<string | undefined> {
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} not found (apt-get install busybox-static)`;
  return (await hasInterpreter(BUSYBOX))
    ? `${BUSYBOX} is dynamically linked (apt-get install busybox-static)`
    : undefined;
}

/** Whether an ELF64 file names a program interpreter (PT_INTERP): a dynamically linked program. */
async function hasInterpreter(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(64);
    await handle.read(header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2) return false;
    const phoff = Number(header.readBigUInt64LE(32));
    const size = header.readUInt16LE(54);
    const count = header.readUInt16LE(56);
    const table = Buffer.alloc(size * count);
    await handle.read(table, 0, table.length, phoff);
    const PT_INTERP = 3;
    for (let i = 0; i < count; i++) if (table.readUInt32LE(i * size) === PT_INTERP) return true;
    return false;
  } finally {
    await handle.close();
  }
}

function onPath(program: string): boolean {
  const path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  return path.split(delimiter).some((dir) => dir && existsSync(join(dir, program)));
}
