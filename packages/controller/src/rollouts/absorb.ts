import { ServiceSpec, parseImageReference } from '@podfleet/shared';
import type { Prisma } from '../db/generated/client.js';

/**
 * Makes a succeeded rollout permanent: each target group's assignment of the service moves to a
 * revision with the new image (created when no revision has that spec yet), and the pins of the
 * groups the rollout overrode move to the new digest. A rollout narrowed by a selector changed only
 * some of a group's devices: it stays as it is (its devices keep the image through it).
 */
export async function absorbRollout(
  tx: Prisma.TransactionClient,
  rollout: {
    id: string;
    service: string;
    targetImage: string;
    spec: { targets: { groups: string[]; selector?: string }; overridePins: string[] };
  },
): Promise<boolean> {
  if (rollout.spec.targets.selector !== undefined || rollout.spec.targets.groups.length === 0)
    return false;
  // The same locks as POST /v1/services and an operator's assignment: a revision number is taken
  // once, and an assignment changed meanwhile is read before it is replaced, not overwritten.
  await tx.$queryRaw`SELECT name FROM services WHERE name = ${rollout.service} FOR UPDATE`;
  await tx.$queryRaw`SELECT name FROM groups WHERE name = ANY(${rollout.spec.targets.groups}::text[])
    ORDER BY name FOR UPDATE`;
  const assignments = await tx.assignment.findMany({
    where: { serviceName: rollout.service, groupName: { in: rollout.spec.targets.groups } },
    include: { serviceRevision: true },
  });
  const revisions = await tx.serviceRevision.findMany({
    where: { serviceName: rollout.service },
    orderBy: { revision: 'asc' },
  });
  let latest = revisions.at(-1)?.revision ?? 0;
  for (const assignment of assignments) {
    const current = ServiceSpec.parse(assignment.serviceRevision.spec);
    // Podman's registry policy follows a tag; a digest cannot be followed (as desired/ does).
    const followsTag =
      current.autoUpdate !== 'registry' || !parseImageReference(rollout.targetImage)?.digest;
    const spec = ServiceSpec.parse({
      ...current,
      image: rollout.targetImage,
      autoUpdate: followsTag ? current.autoUpdate : 'off',
    });
    const text = JSON.stringify(spec);
    let revision = revisions.find(
      (r) => JSON.stringify(ServiceSpec.parse(r.spec)) === text,
    )?.revision;
    if (revision === undefined) {
      revision = ++latest;
      const created = await tx.serviceRevision.create({
        data: { serviceName: rollout.service, revision, spec, image: spec.image },
      });
      revisions.push(created);
    }
    await tx.assignment.update({
      where: {
        groupName_serviceName: { groupName: assignment.groupName, serviceName: rollout.service },
      },
      data: { revision },
    });
  }
  if (parseImageReference(rollout.targetImage)?.digest && rollout.spec.overridePins.length > 0) {
    await tx.pin.updateMany({
      where: { serviceName: rollout.service, groupName: { in: rollout.spec.overridePins } },
      data: { image: rollout.targetImage },
    });
  }
  await tx.rollout.update({ where: { id: rollout.id }, data: { absorbed: true } });
  return true;
}
