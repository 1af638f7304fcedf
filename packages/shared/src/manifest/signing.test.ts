import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  generateSigningKey,
  keyIdOf,
  manifestJson,
  signManifest,
  signManifests,
  verifyManifest,
} from './signing.js';
import { endorseKey } from './key-endorsement.js';

const key = generateSigningKey();
const unsigned = {
  device: 'edge-0001',
  generation: 7,
  issuedAt: '2026-11-29T10:00:00.000Z',
  services: [{ name: 'web', image: 'registry.example/acme/web:1.4', env: { B: '2', A: '1' } }],
};

describe('canonical JSON', () => {
  it('does not depend on key order or whitespace', () => {
    const a = JSON.parse('{ "b": [1, {"y": 2, "x": 1}], "a": "s" }');
    const b = { a: 's', b: [1, { x: 1, y: 2 }] };
    expect(canonicalJson(a)).toBe('{"a":"s","b":[1,{"x":1,"y":2}]}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });
});

describe('manifest signing', () => {
  it('signs with Ed25519 and names the key', () => {
    const manifest = signManifest(unsigned, key.privateKeyPem);
    expect(manifest.signature.alg).toBe('ed25519');
    expect(manifest.signature.keyId).toBe(key.keyId);
    expect(keyIdOf(key.publicKeyPem)).toBe(key.keyId);
    expect(verifyManifest(manifest, [key.publicKeyPem])).toMatchObject({ ok: true });
  });

  it('verifies after a JSON round trip with reordered keys and whitespace', () => {
    const manifest = signManifest(unsigned, key.privateKeyPem);
    const text = JSON.stringify(reverseKeys(manifest), null, 4);
    expect(text.indexOf('"signature"')).toBeLessThan(text.indexOf('"device"'));
    expect(verifyManifest(JSON.parse(text), [key.publicKeyPem]).ok).toBe(true);
  });

  it('refuses a manifest changed after signing', () => {
    const manifest = signManifest(unsigned, key.privateKeyPem);
    const tampered = { ...manifest, generation: 8 };
    expect(verifyManifest(tampered, [key.publicKeyPem])).toEqual({
      ok: false,
      reason: 'signature does not verify',
    });
    const image = structuredClone(manifest);
    image.services[0]!.image = 'registry.example/evil/web:1.4';
    expect(verifyManifest(image, [key.publicKeyPem]).ok).toBe(false);
  });

  it('refuses a manifest signed by a key it does not trust', () => {
    const other = generateSigningKey();
    const manifest = signManifest(unsigned, other.privateKeyPem);
    expect(verifyManifest(manifest, [key.publicKeyPem])).toEqual({
      ok: false,
      reason: `signed by unknown key ${other.keyId}`,
    });
  });

  it('accepts any of several trusted keys (rotation)', () => {
    const next = generateSigningKey();
    const manifest = signManifest(unsigned, next.privateKeyPem);
    expect(verifyManifest(manifest, [key.publicKeyPem, next.publicKeyPem]).ok).toBe(true);
  });

  it('explains an invalid manifest in one line with the field path', () => {
    const manifest = signManifest(unsigned, key.privateKeyPem);
    const result = verifyManifest({ ...manifest, services: [{ name: 'Bad!', image: 'x' }] }, [
      key.publicKeyPem,
    ]);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(
      /^invalid manifest: services\[0\]\.name: must match/,
    );
    expect(verifyManifest('garbage', [key.publicKeyPem]).ok).toBe(false);
  });

  it('refuses two services with one name', () => {
    expect(() =>
      signManifest(
        { ...unsigned, services: [unsigned.services[0]!, unsigned.services[0]!] },
        key.privateKeyPem,
      ),
    ).toThrow(/duplicate service web/);
  });
});

describe('signing many manifests', () => {
  const spec = { name: 'web', image: 'registry.example/acme/web:2.0', env: { B: '2', A: '1' } };
  const sidecar = { name: 'agent-sidecar', image: 'registry.example/acme/side:1', command: ['-v'] };
  const fleet = Array.from({ length: 40 }, (_, i) => ({
    device: `edge-${String(i).padStart(4, '0')}`,
    generation: i + 1,
    issuedAt: '2026-11-29T10:00:00.000Z',
    services: i % 2 ? [spec] : [sidecar, spec],
  }));

  it('gives what signManifest gives for each (Ed25519 signatures are deterministic)', async () => {
    const signed = await signManifests(fleet, key.privateKeyPem);
    expect(signed).toEqual(fleet.map((m) => signManifest(m, key.privateKeyPem)));
    expect(signed.every((m) => verifyManifest(m, [key.publicKeyPem]).ok)).toBe(true);
    expect(signed[0]!.services[1]).not.toBe(spec);
    // Stored and published as the canonical text of the signed manifest.
    expect(signed.map(manifestJson)).toEqual(signed.map((m) => canonicalJson(m)));
    expect(JSON.parse(manifestJson(signed[3]!))).toEqual(signed[3]);
  });

  it('carries a rotation chain as signManifest does', async () => {
    const next = generateSigningKey();
    const chain = [
      endorseKey(next.publicKeyPem, key.privateKeyPem, new Date('2026-11-29T09:00:00.000Z')),
    ];
    const signed = await signManifests(fleet.slice(0, 3), next.privateKeyPem, chain);
    expect(signed).toEqual(
      fleet.slice(0, 3).map((m) => signManifest(m, next.privateKeyPem, chain)),
    );
    expect(verifyManifest(signed[0], [key.publicKeyPem])).toMatchObject({ ok: true });
  });

  it('refuses what signManifest refuses, with its error', async () => {
    const twice = { ...fleet[0]!, services: [spec, spec] };
    await expect(signManifests([fleet[1]!, twice], key.privateKeyPem)).rejects.toThrow(
      /duplicate service web/,
    );
    const bad = { ...fleet[0]!, device: 'Bad Id!' };
    await expect(signManifests([bad], key.privateKeyPem)).rejects.toThrow(/device/);
    const extra = { ...fleet[0]!, extra: 1 } as unknown as (typeof fleet)[0];
    await expect(signManifests([extra], key.privateKeyPem)).rejects.toThrow(/extra/);
  });
});

function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value).reverse();
  return Object.fromEntries(entries.map(([key, member]) => [key, reverseKeys(member)]));
}
