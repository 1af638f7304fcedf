import type { PrismaClient } from '../db/client.js';

/** How many devices run a service under one image reference and local image id. */
export interface RunningVersion {
  image: string;
  /** The local image id (sha256 hex) the containers run; null where none runs. */
  imageId: string | null;
  devices: number;
}

/**
 * The version distribution of each of `services`, from the devices' last state reports, most
 * devices first: one grouped scan of the reports in Postgres, whatever the fleet's size.
 */
export async function runningVersions(
  db: Pick<PrismaClient, '$queryRaw'>,
  services: readonly string[],
): Promise<Map<string, RunningVersion[]>> {
  const found = new Map<string, RunningVersion[]>(services.map((name) => [name, []]));
  if (services.length === 0) return found;
  const rows = await db.$queryRaw<(RunningVersion & { service: string })[]>`
    SELECT s->>'name' AS service, s->>'image' AS image, s->>'imageId' AS "imageId",
           count(*)::int AS devices
    FROM devices d
    CROSS JOIN LATERAL jsonb_array_elements(
      CASE WHEN jsonb_typeof(d.last_state->'services') = 'array'
        THEN d.last_state->'services' ELSE '[]'::jsonb END) s
    WHERE s->>'name' = ANY(${[...services]}::text[])
    GROUP BY 1, 2, 3
    ORDER BY 1, 4 DESC, 2, 3`;
  for (const { service, ...version } of rows) found.get(service)?.push(version);
  return found;
}
