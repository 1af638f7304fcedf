import type { AgentConfig } from '@podfleet/shared';
import type { HostDriver } from '../host/host-driver.js';
import { SystemdPodmanHost } from '../host/systemd-podman-host.js';

/**
 * The driver `podfleet-agent run` manages the device with: systemd + Podman in the config's
 * scope. The one place that picks the real driver.
 */
export async function createHostDriver(config: AgentConfig): Promise<HostDriver> {
  if (config.scope === 'user') {
    const problem = userScopeProblem(process.env, process.getuid?.());
    if (problem) throw new Error(problem);
  }
  return new SystemdPodmanHost({ scope: config.scope });
}

/**
 * Why this process cannot manage an account's units, if it cannot: `systemctl --user`, `journalctl
 * --user` and rootless Podman act for the account that runs them, and find its service manager
 * through XDG_RUNTIME_DIR (set by a login, or by the agent's unit: docs/decisions/010).
 */
export function userScopeProblem(
  env: NodeJS.ProcessEnv,
  uid: number | undefined,
): string | undefined {
  if (uid === 0) {
    return 'scope user: the agent runs as root; run it as the account whose services it manages (User= in podfleet-agent.service)';
  }
  if (!env.XDG_RUNTIME_DIR) {
    return `scope user: XDG_RUNTIME_DIR is not set: the account's runtime directory (/run/user/${uid ?? 'UID'}), where its service manager listens`;
  }
  return undefined;
}
