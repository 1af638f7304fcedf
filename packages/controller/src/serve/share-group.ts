import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MqttClient } from 'mqtt';
import type { PrismaClient } from '../db/client.js';

/** The group every controller used before groups were per fleet; sessions may still hold it. */
const FORMER_DEFAULT = 'podfleet';
const RECORD = 'share-group';

/**
 * The fleet's shared-subscription group: PODFLEET_SHARE_GROUP when set, else the random name in
 * broker_share_group, made by the first controller to ask (of several starting at once, one row
 * wins and all read it). Devices know neither, so a device subscribing to `$share/<its guess>/…`
 * forms a group of its own and takes nothing from the controllers' (decision 007).
 */
export async function fleetShareGroup(
  prisma: PrismaClient,
  configured: string | undefined,
): Promise<string> {
  if (configured) return configured;
  const name = `pf-${randomBytes(18).toString('base64url')}`;
  await prisma.brokerShareGroup.createMany({ data: [{ slot: 1, name }], skipDuplicates: true });
  return (await prisma.brokerShareGroup.findUniqueOrThrow({ where: { slot: 1 } })).name;
}

/**
 * Ends the shared subscriptions this controller's persistent session may still hold under a group
 * it no longer uses (the one it recorded in `dataDir` last time, and the former default): in a
 * group devices can join, each of its turns could go to a device. Then records `group`.
 */
export async function leaveFormerShareGroups(
  client: MqttClient,
  dataDir: string,
  group: string,
  plainFilters: readonly string[],
): Promise<string[]> {
  const record = join(dataDir, RECORD);
  const recorded = (await readFile(record, 'utf8').catch(() => '')).trim();
  const former = [...new Set([recorded, FORMER_DEFAULT])].filter((g) => g && g !== group);
  const filters = former.flatMap((g) => plainFilters.map((filter) => `$share/${g}/${filter}`));
  if (filters.length > 0) await client.unsubscribeAsync(filters);
  await writeFile(record, `${group}\n`);
  return former;
}
