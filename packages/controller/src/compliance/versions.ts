import type { PrismaClient } from '../db/client.js';

/** How many devices run a service under one image reference, and under which local image ids. */
export interface RunningVersion {
  image: string;
  devices: number;
  /**
   * Per local image id (podman's content address of the image, sha256 hex): several under one
   * reference are several digests of one tag. Null where no container runs.
   */
  imageIds: { imageId: string | null; devices: number }[];
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
  const rows = await db.$queryRaw<
    { service: string; image: string; imageId: string | null; devices: number }[]
  >`
    SELECT s->>'name' AS service, s->>'image' AS image, s->>'imageId' AS "imageId",
           count(*)::int AS devices
    FROM devices d
    CROSS JOIN LATERAL jsonb_array_elements(
      CASE WHEN jsonb_typeof(d.last_state->'services') = 'array'
        THEN d.last_state->'services' ELSE '[]'::jsonb END) s
    WHERE s->>'name' = ANY(${[...services]}::text[])
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 4 DESC, 3`;
  for (const { service, image, imageId, devices } of rows) {
    const versions = found.get(service);
    if (!versions) continue;
    let version = versions.find((v) => v.image === image);
    if (!version) versions.push((version = { image, devices: 0, imageIds: [] }));
    version.devices += devices;
    version.imageIds.push({ imageId, devices });
  }
  for (const versions of found.values()) versions.sort((a, b) => b.devices - a.devices);
  return found;
}
