import type { RemoteResult } from './ssh-connection.js';
import { INSTALLED_PATHS } from './agent-files.js';

/** Runs argv on the device (as root). */
export type DeviceRun = (argv: readonly string[], input?: string | Buffer) => Promise<RemoteResult>;

/** What the check step found out about the device. */
export interface DeviceFacts {
  hostname: string;
  systemd: { version: number; state: string };
  podman: string;
  arch: string;
  node: { version: string; path: string };
  /** Free bytes on each checked path's file system. */
  free: Record<string, number>;
}

/** What a device must have. */
export interface DeviceRequirements {
  /** Bytes that must be free on each path's file system. */
  minFree: Record<string, number>;
}

export const MIN_PODMAN = [3, 4] as const;
export const MIN_NODE = 20;
/** Architectures Node ≥ 20 is built for (uname -m): the bundled agent is plain JavaScript. */
const ARCHITECTURES = new Set(['x86_64', 'aarch64', 'armv7l', 'ppc64le', 's390x']);

/** The device is not fit (or not free) for the agent: every problem found, not just the first. */
export class DeviceUnfit extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

/**
 * The check step: systemd running, Podman ≥ 3.4, an architecture Node runs on, Node ≥ 20 on the
 * PATH systemd gives services, enough free space, and no earlier agent in the way. Reads only.
 */
export async function inspectDevice(
  run: DeviceRun,
  requirements: DeviceRequirements,
): Promise<DeviceFacts> {
  const problems: string[] = [];
  const out = async (argv: string[]) => run(argv);

  const hostname = (await out(['uname', '-n'])).stdout.trim();
  const state = await out(['systemctl', 'is-system-running']);
  const systemState = state.stdout.trim();
  if (state.code === 127) problems.push('systemd: systemctl not found (systemd is required)');
  else if (systemState !== 'running' && systemState !== 'degraded') {
    problems.push(
      `systemd: the system is ${JSON.stringify(systemState || state.stderr.trim())}, not running or degraded`,
    );
  }
  const systemdVersion = Number(
    /^systemd (\d+)/.exec((await out(['systemctl', '--version'])).stdout)?.[1] ?? 0,
  );

  const podman = await out(['podman', '--version']);
  const podmanVersion = /podman version (\d+\.\d+(?:\.\d+)?)/.exec(podman.stdout)?.[1] ?? '';
  if (!podmanVersion) {
    problems.push(
      podman.code === 127
        ? 'podman: not installed'
        : `podman: \`podman --version\` exited ${podman.code}${detail(podman)}`,
    );
  } else if (compareVersions(podmanVersion, MIN_PODMAN.join('.')) < 0) {
    problems.push(`podman: ${podmanVersion} is older than ${MIN_PODMAN.join('.')}`);
  }

  const arch = (await out(['uname', '-m'])).stdout.trim();
  if (!ARCHITECTURES.has(arch)) problems.push(`architecture: ${arch} has no Node.js build`);

  // The PATH systemd gives services (and root's ssh session): the unit runs `/usr/bin/env node`.
  const node = await out([
    'env',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'sh',
    '-c',
    'command -v node && node --version',
  ]);
  const [nodePath = '', nodeVersion = ''] = node.stdout.trim().split('\n');
  const nodeMajor = Number(/^v(\d+)\./.exec(nodeVersion)?.[1] ?? 0);
  if (node.code !== 0 || !nodeMajor)
    problems.push('node: not found on PATH (Node.js ≥ 20 is required)');
  else if (nodeMajor < MIN_NODE) problems.push(`node: ${nodeVersion} is older than v${MIN_NODE}`);

  const free: Record<string, number> = {};
  for (const [path, needed] of Object.entries(requirements.minFree)) {
    // A path that does not exist yet (/opt) will be made on the file system of its parent.
    const df = await out([
      'sh',
      '-c',
      'p=$1; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -Pk "$p"',
      'sh',
      path,
    ]);
    const available = Number(df.stdout.trim().split('\n').at(-1)?.split(/\s+/)[3] ?? NaN) * 1024;
    if (!Number.isFinite(available)) {
      problems.push(`disk: cannot read the free space of ${path}${detail(df)}`);
      continue;
    }
    free[path] = available;
    if (available < needed) {
      problems.push(
        `disk: ${formatBytes(available)} free on ${path}, ${formatBytes(needed)} needed`,
      );
    }
  }

  const leftovers = (
    await out([
      'sh',
      '-c',
      'for f; do [ -e "$f" ] && echo "$f"; done; true',
      'sh',
      ...INSTALLED_PATHS,
    ])
  ).stdout
    .trim()
    .split('\n')
    .filter(Boolean);
  if (leftovers.length > 0) {
    problems.push(
      `an agent is installed already (${leftovers.join(', ')}): remove it first, or reissue after removing`,
    );
  }

  if (problems.length > 0) throw new DeviceUnfit(problems);
  return {
    hostname,
    systemd: { version: systemdVersion, state: systemState },
    podman: podmanVersion,
    arch,
    node: { version: nodeVersion, path: nodePath },
    free,
  };
}

/** One line of what the command said, for a problem's end. */
function detail(result: RemoteResult): string {
  const said = (result.stderr.trim() || result.stdout.trim()).split('\n')[0];
  return said ? `: ${said}` : '';
}

export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const diff = (left[i] ?? 0) - (right[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
  return `${Math.round(bytes / 1024 ** 2)} MiB`;
}
