import type { PodmanLab } from './podman-lab.js';
import { failure } from './run.js';

export interface GeneratedUnit {
  /** What `podman generate systemd --new` wrote for the container. */
  unit: string;
  /** The argv Podman recorded at create, which generate rewrites into ExecStart. */
  createCommand: string[];
}

export interface GenerateRequest {
  name: string;
  /** Everything after `podman create`: options, image, command. */
  createArgs: string[];
  startTimeout: number;
}

/**
 * Creates the container, has Podman write its unit, and removes the container again. The names
 * are the fixtures' (web, api…), so the whole cycle runs under the lab's container lock.
 */
export async function generateSystemdUnit(
  lab: PodmanLab,
  request: GenerateRequest,
): Promise<GeneratedUnit> {
  return lab.exclusive(async () => {
    // A run killed between create and rm leaves its container behind in the lab store.
    await removeContainer(lab, request.name);
    const created = await lab.podman(['create', ...request.createArgs]);
    if (created.code !== 0) throw new Error(`podman create ${request.name}: ${failure(created)}`);
    try {
      const inspect = await lab.podmanOk([
        'container',
        'inspect',
        '--format',
        '{{json .Config.CreateCommand}}',
        request.name,
      ]);
      const generated = await lab.podmanOk([
        'generate',
        'systemd',
        '--new',
        '--name',
        '--container-prefix',
        '',
        '--separator',
        '',
        '--no-header',
        '--start-timeout',
        String(request.startTimeout),
        request.name,
      ]);
      return { unit: generated.stdout, createCommand: JSON.parse(inspect.stdout) as string[] };
    } finally {
      await removeContainer(lab, request.name);
    }
  });
}

/**
 * `podman rm` of a container with a health check also tries to remove its systemd timer and logs
 * an error when there is no systemd (as on this host); the exit code is what tells.
 */
async function removeContainer(lab: PodmanLab, name: string): Promise<void> {
  const removed = await lab.podman(['rm', '--force', '--ignore', '--volumes', name]);
  if (removed.code !== 0) throw new Error(`podman rm ${name}: ${failure(removed)}`);
}
