import type { Prisma } from '../db/generated/client.js';

/**
 * A group whose assignment of a service runs the image a succeeded rollout put in place. A type,
 * not an interface, so that it is JSON for an audit row's details.
 */
export type RolledOutImage = { group: string; image: string; rollout: string };

/**
 * Where rollouts put a service's image in place: each group whose assignment still runs the target
 * image of the latest absorbed rollout naming that group (absorb.ts moved the assignment there). A
 * group an operator has since assigned another revision is the operator's again.
 */
export async function rolledOutImages(
  tx: Prisma.TransactionClient,
  service: string,
): Promise<RolledOutImage[]> {
  const assignments = await tx.assignment.findMany({
    where: { serviceName: service },
    include: { serviceRevision: { select: { image: true } } },
    orderBy: { groupName: 'asc' },
  });
  if (assignments.length === 0) return [];
  const rollouts = await tx.rollout.findMany({
    where: { service, absorbed: true },
    orderBy: [{ finishedAt: 'desc' }, { createdAt: 'desc' }],
    select: { id: true, targetImage: true, spec: true },
  });
  const found: RolledOutImage[] = [];
  for (const { groupName, serviceRevision } of assignments) {
    const last = rollouts.find((r) => targetGroups(r.spec).includes(groupName));
    if (last && last.targetImage === serviceRevision.image)
      found.push({ group: groupName, image: last.targetImage, rollout: last.id });
  }
  return found;
}

function targetGroups(spec: Prisma.JsonValue): string[] {
  const groups = (spec as { targets?: { groups?: unknown } } | null)?.targets?.groups;
  return Array.isArray(groups) ? groups.filter((g): g is string => typeof g === 'string') : [];
}

/**
 * Why storing `image` as a service's latest revision would undo a rollout, one line per group it
 * would move back on the next `assign`; empty when the image is what the rollouts put in place.
 */
export function downgradeProblems(
  service: string,
  image: string,
  rolledOut: readonly RolledOutImage[],
): string[] {
  return rolledOut
    .filter((placed) => placed.image !== image)
    .map(
      (placed) =>
        `body.spec.image: group ${placed.group} runs ${service} ${placed.image} since rollout ` +
        `${placed.rollout.slice(0, 8)}; ${image} as the latest revision would move it back at ` +
        `the next assign (put ${placed.image} in the spec, start a rollout, or force)`,
    );
}
