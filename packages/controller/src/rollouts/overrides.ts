import type { PrismaClient } from '../db/client.js';
import type { RolloutImage, RolloutOverrides } from '../desired/image-rule.js';

type Db = Pick<PrismaClient, '$queryRawUnsafe'>;

interface OverrideRow {
  deviceId: string;
  toImage: string;
  overGroupPin: boolean;
  service: string;
}

/**
 * What rollouts give devices now: a device that was pointed at a rollout's image and not back
 * (updating or succeeded) gets it, in rollouts that are active, paused, aborted without rollback,
 * or succeeded but not absorbed into an assignment. A later rollout of the same service wins.
 * Plain SQL: read on every recompute, up to one row per device.
 */
export async function loadRolloutOverrides(db: Db): Promise<RolloutOverrides> {
  const rows = await db.$queryRawUnsafe<OverrideRow[]>(
    `SELECT rd.device_id AS "deviceId", rd.to_image AS "toImage", rd.over_group_pin AS "overGroupPin",
       r.service
     FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id
     WHERE rd.state IN ('updating', 'succeeded')
       AND (r.state IN ('pending', 'running', 'paused', 'aborted') OR (r.state = 'succeeded' AND NOT r.absorbed))
     ORDER BY r.created_at, r.id`,
  );
  const overrides = new Map<string, Map<string, RolloutImage>>();
  for (const row of rows) {
    let services = overrides.get(row.deviceId);
    if (!services) overrides.set(row.deviceId, (services = new Map()));
    services.set(row.service, { image: row.toImage, overGroupPin: row.overGroupPin });
  }
  return overrides;
}
