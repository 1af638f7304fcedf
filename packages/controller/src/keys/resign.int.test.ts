import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  endorseKey,
  generateSigningKey,
  signManifest,
  verifyManifest,
  type DeviceManifest,
} from '@podfleet/shared';
import { openDatabase, type Database } from '../db/client.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { resignManifests } from './resign.js';

describe('re-signing stored manifests after a key rotation', () => {
  let scratch: ScratchDatabase;
  let db: Database;
  const old = generateSigningKey();
  const fresh = generateSigningKey();
  const key = { ...fresh, endorsements: [endorseKey(fresh.publicKeyPem, old.privateKeyPem)] };
  const manifest = (device: string, generation: number) => ({
    device,
    generation,
    issuedAt: '2026-11-29T10:00:00.000Z',
    services: [{ name: 'web', image: 'registry.example/acme/web:1' }],
  });

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    db = await openDatabase({ DATABASE_URL: scratch.url });
    await db.migrate();
    const stale = signManifest(manifest('edge-1', 3), old.privateKeyPem);
    const current = signManifest(manifest('edge-2', 5), key.privateKeyPem, key.endorsements);
    await db.prisma.device.createMany({
      data: [
        {
          id: 'edge-1',
          desiredGeneration: 3,
          appliedGeneration: 3,
          desiredManifest: stale,
          desiredHash: 'h1',
        },
        { id: 'edge-2', desiredGeneration: 5, desiredManifest: current, desiredHash: 'h2' },
        { id: 'edge-3' },
      ],
    });
  });
  afterAll(async () => {
    await db?.close();
    await scratch?.drop();
  });

  it('signs the old key’s manifests again under the next generation, saying the same', async () => {
    const now = new Date('2026-11-29T12:00:00.000Z');
    const published = await resignManifests(db.prisma, key, now);
    expect(published.map((m) => [m.device, m.generation])).toEqual([['edge-1', 4]]);
    const stored = await db.prisma.device.findUniqueOrThrow({ where: { id: 'edge-1' } });
    const resigned = stored.desiredManifest as unknown as DeviceManifest;
    expect(resigned).toEqual(published[0]);
    expect(stored).toMatchObject({ desiredGeneration: 4, desiredHash: 'h1' });
    expect(resigned).toMatchObject({
      issuedAt: now.toISOString(),
      services: [{ name: 'web', image: 'registry.example/acme/web:1' }],
      signature: { keyId: fresh.keyId },
      keyChain: key.endorsements,
    });
    // An agent enrolled under the old key follows the rotation with it.
    expect(verifyManifest(resigned, [old.publicKeyPem])).toMatchObject({
      ok: true,
      rotatedTo: [fresh.publicKeyPem],
    });
  });

  it('has nothing left to do the second time', async () => {
    expect(await resignManifests(db.prisma, key)).toEqual([]);
    expect(
      (await db.prisma.device.findUniqueOrThrow({ where: { id: 'edge-2' } })).desiredGeneration,
    ).toBe(5);
  });
});
