import type { PrismaClient } from '../db/client.js';
import type { RolloutImage, RolloutOverrides } from '../desired/image-rule.js';

type Db = Pick<PrismaClient, 'rolloutDevice'>;

/**
 * What rollouts give devices now: a device that was pointed at a rollout's image and not back
 * (updating or succeeded) gets it, in rollouts that are active, paused, aborted without rollback,
 * or succeeded but not absorbed into an assignment. A later rollout of the same service wins.
 */
export async function loadRolloutOverrides(db: Db): Promise<RolloutOverrides> {
  const rows = await db.rolloutDevice.findMany({
    where: {
      state: { in: ['updating', 'succeeded'] },
      rollout: {
        OR: [
          { state: { in: ['pending', 'running', 'paused', 'aborted'] } },
          { state: 'succeeded', absorbed: false },
        ],
      },
    },
    select: {
      deviceId: true,
      toImage: true,
      overGroupPin: true,
      rollout: { select: { service: true, createdAt: true } },
    },
    orderBy: { rollout: { createdAt: 'asc' } },
  });
  const overrides = new Map<string, Map<string, RolloutImage>>();
  for (const row of rows) {
    let services = overrides.get(row.deviceId);
    if (!services) overrides.set(row.deviceId, (services = new Map()));
    services.set(row.rollout.service, { image: row.toImage, overGroupPin: row.overGroupPin });
  }
  return overrides;
}
