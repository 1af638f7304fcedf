import { existsSync, statSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_UNIT, renderAgentUnit, type AgentAccount } from '../../install/agent-unit-file.js';
import type { LabDevice } from './lab-device.js';

/** The repo, bind-mounted read-only into a device at the same path: the built agent runs there. */
export const REPO = fileURLToPath(new URL('../../../../../', import.meta.url)).replace(/\/$/, '');
const AGENT_ENTRY = join(REPO, 'packages/agent/bin/podfleet-agent.js');
export const AGENT_UNIT_PATH = `/etc/systemd/system/${AGENT_UNIT}`;
export const AGENT_CONFIG_PATH = '/etc/podfleet/agent.yaml';

/**
 * nspawn arguments that let a device run this repo's built agent: the host's node (it links only
 * libc, libstdc++ and libgcc, which trixie has newer: glibc 2.41 vs 2.36) and the repo with its
 * node_modules, both read-only.
 */
export function agentBindArgs(): string[] {
  return [`--bind-ro=${process.execPath}:/usr/local/bin/node`, `--bind-ro=${REPO}`];
}

export interface DeviceAgentConfig {
  device: string;
  brokerUrl: string;
  /** The controller's public key(s), PEM: the manifests the agent accepts. */
  publicKeyPem: string;
  /** `user`: the agent runs as an account and manages its units (installAgent's `user`). */
  scope?: 'system' | 'user';
}

/** /etc/podfleet/agent.yaml, as enrollment writes it (auto-update only when asked). */
export function agentConfigYaml(config: DeviceAgentConfig): string {
  const { device, brokerUrl, publicKeyPem, scope } = config;
  const pem = publicKeyPem.trim().replace(/\n/g, '\n    ');
  return `device: ${device}
${scope ? `scope: ${scope}\n` : ''}broker:
  url: ${brokerUrl}
controller:
  publicKeys: |
    ${pem}
autoUpdate: { schedule: "off" }
logLevel: info
`;
}

/**
 * Installs the agent in the device as enrollment does: its config, podfleet-agent.service (the
 * rendered unit, pointing at the bind-mounted build; as `user` for user scope), daemon-reload;
 * `enable` also starts it and makes it start at boot.
 */
export async function installAgent(
  device: LabDevice,
  config: DeviceAgentConfig,
  options: { watchdogSec?: number; enable?: boolean; user?: AgentAccount } = {},
): Promise<void> {
  await writeInDevice(device, AGENT_CONFIG_PATH, agentConfigYaml(config));
  const unit = renderAgentUnit({
    entry: AGENT_ENTRY,
    ...(options.watchdogSec !== undefined ? { watchdogSec: options.watchdogSec } : {}),
    ...(options.user ? { user: options.user } : {}),
  });
  await writeInDevice(device, AGENT_UNIT_PATH, unit);
  await device.exec(['systemctl', 'daemon-reload']);
  if (options.enable) await device.exec(['systemctl', 'enable', '--now', AGENT_UNIT], 120_000);
}

/** Writes a file into the device (its root as the host sees it), directories included. */
export async function writeInDevice(device: LabDevice, path: string, text: string): Promise<void> {
  await device.exec(['mkdir', '-p', path.slice(0, path.lastIndexOf('/'))]);
  await writeFile(join(device.root, path), text);
}

/**
 * The device runs the repo's dist/: it must be built from the sources as they are (npm run build).
 * tsc -b rewrites dist/.tsbuildinfo whenever a source is newer, but leaves a module whose output
 * did not change as it was: each source is checked against the build info, and for its module.
 */
export async function assertAgentBuilt(): Promise<void> {
  const stale: string[] = [];
  for (const pkg of ['shared', 'agent']) {
    const root = join(REPO, 'packages', pkg);
    const info = join(root, 'dist/.tsbuildinfo');
    const builtAt = existsSync(info) ? statSync(info).mtimeMs : 0;
    for (const source of await sources(join(root, 'src'))) {
      const module = join(root, 'dist', relative(join(root, 'src'), source)).replace(
        /\.ts$/,
        '.js',
      );
      if (!existsSync(module) || statSync(source).mtimeMs > builtAt) {
        stale.push(relative(REPO, source));
      }
    }
  }
  if (stale.length > 0) {
    const some = stale.slice(0, 3).join(', ');
    throw new Error(
      `dist/ is older than ${some}${stale.length > 3 ? ', …' : ''}: run npm run build first`,
    );
  }
}

async function sources(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // What the packages' tsconfig leaves out of dist/: the labs and the tests.
    if (entry.isDirectory()) {
      if (!['device-lab', 'lab'].includes(entry.name)) found.push(...(await sources(path)));
    } else if (/(?<!\.test)\.ts$/.test(entry.name)) found.push(path);
  }
  return found;
}
