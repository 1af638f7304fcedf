import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseImageReference } from '../../spec/image.js';
import type { ServiceSpec } from '../../spec/service-spec.js';
import { LAB_IMAGE, type PodmanLab, labImageDigest } from './podman-lab.js';

export interface LabSpec {
  /** The spec both sides are compared on: the fixture with this host's stand-ins applied. */
  spec: ServiceSpec;
  /** One line per stand-in, for the test output and the report. */
  standIns: string[];
}

/**
 * What this host cannot give a fixture, replaced by the nearest thing it can, the same way for our
 * renderer and for Podman (both render the returned spec), and the fixture's image tagged onto the
 * lab image:
 * - a bind-mount source must exist for podman create: it moves under the lab's scratch dir;
 * - a digest can only name an image that has it: the fixture's digest becomes the lab image's;
 * - `--log-driver journald` fails at create without a journald socket, as on a host not booted with
 *   systemd ("failed to initialize journal: write unixgram …->/run/systemd/journal/socket: sendmsg:
 *   no such file or directory"): k8s-file instead. Podman records the create argv verbatim and
 *   generate copies the flag from it (the test asserts the record), so only the value changes;
 */
export async function labSpecFor(lab: PodmanLab, fixture: ServiceSpec): Promise<LabSpec> {
  const standIns: string[] = [];
  const volumes: string[] = [];
  for (const volume of fixture.volumes) {
    const [source, ...rest] = volume.split(':');
    if (!source!.startsWith('/')) {
      volumes.push(volume);
      continue;
    }
    const local = join(lab.scratchDir, source!);
    await mkdir(local, { recursive: true });
    volumes.push([local, ...rest].join(':'));
    standIns.push(`volume source ${source} → ${local}`);
  }
  let image = fixture.image;
  const reference = parseImageReference(image)!;
  const repository = reference.registry
    ? `${reference.registry}/${reference.repository}`
    : reference.repository;
  if (reference.digest) {
    const digest = await labImageDigest(lab);
    image = image.replace(reference.digest, digest);
    await lab.podmanOk(['tag', LAB_IMAGE, `${repository}:${reference.tag ?? 'podfleet-lab'}`]);
    standIns.push(`image digest ${reference.digest.slice(0, 19)}… → lab image ${digest}`);
  } else {
    await lab.podmanOk(['tag', LAB_IMAGE, image]);
  }
  const spec: ServiceSpec = { ...fixture, volumes, image };
  if (fixture.logDriver === 'journald' && !(await journaldWorks(lab))) {
    spec.logDriver = 'k8s-file';
    standIns.push('log driver journald → k8s-file');
  }
  return { spec, standIns };
}

let journald: Promise<boolean> | undefined;

/** Whether Podman can create a journald-logged container here (probed once per process). */
function journaldWorks(lab: PodmanLab): Promise<boolean> {
  journald ??= (async () => {
    const created = await lab.podman(['create', '--log-driver', 'journald', LAB_IMAGE]);
    if (created.code !== 0) return false;
    await lab.podmanOk(['rm', '--force', created.stdout.trim()]);
    return true;
  })();
  return journald;
}
