import type { AgentConfig } from '@podfleet/shared';
import type { HostDriver } from '../host/host-driver.js';
import { SystemdPodmanHost } from '../host/systemd-podman-host.js';

/**
 * The driver `podfleet-agent run` manages the device with: systemd + Podman in the config's
 * scope. The one place that picks the real driver.
 */
export async function createHostDriver(config: AgentConfig): Promise<HostDriver> {
  return new SystemdPodmanHost({ scope: config.scope });
}
