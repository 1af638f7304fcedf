import { signManifest, UnsignedManifest, type SigningKey } from '@podfleet/shared';
import type { DeviceManifest } from '@podfleet/shared';
import type { PrismaClient } from '../db/client.js';

// DesiredSync's advisory lock (desired/sync.ts): generations are handed out under it only.
const DESIRED_LOCK = 0x70660001;

/**
 * After a key rotation: every stored manifest not signed by `key` is signed again with it (and
 * its endorsement chain), under the next generation, so that devices receive the rotation even
 * when nothing else changes for them; what the manifests say stays the same (their content hash
 * too). Returns the manifests to publish. Idempotent: a second run finds nothing to do.
 */
export async function resignManifests(
  prisma: PrismaClient,
  key: SigningKey,
  now = new Date(),
): Promise<DeviceManifest[]> {
  return prisma.$transaction(
    async (tx) => {
      await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${DESIRED_LOCK})`);
      const stale = await tx.$queryRaw<
        { id: string; manifest: Record<string, unknown>; generation: number; applied: number }[]
      >`SELECT id, desired_manifest AS manifest, desired_generation AS generation,
               applied_generation AS applied
          FROM devices
         WHERE desired_manifest IS NOT NULL
           AND desired_manifest->'signature'->>'keyId' IS DISTINCT FROM ${key.keyId}`;
      const signed = stale.map((row) => {
        const { signature: _old, keyChain: _chain, ...body } = row.manifest;
        const unsigned = UnsignedManifest.parse({
          ...body,
          generation: Math.max(row.generation, row.applied) + 1,
          issuedAt: now.toISOString(),
        });
        return signManifest(unsigned, key.privateKeyPem, key.endorsements ?? []);
      });
      if (signed.length > 0) {
        await tx.$executeRawUnsafe(
          `UPDATE devices AS d SET desired_generation = u.generation, desired_manifest = u.manifest,
             updated_at = now()
           FROM unnest($1::text[], $2::int[], $3::jsonb[]) AS u(id, generation, manifest)
           WHERE d.id = u.id`,
          signed.map((m) => m.device),
          signed.map((m) => m.generation),
          signed.map((m) => JSON.stringify(m)),
        );
      }
      return signed;
    },
    { timeout: 120_000, maxWait: 120_000 },
  );
}
