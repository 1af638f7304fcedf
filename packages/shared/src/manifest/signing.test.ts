import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  generateSigningKey,
  keyIdOf,
  signManifest,
  verifyManifest,
} from './signing.js';

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

function reverseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseKeys);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value).reverse();
  return Object.fromEntries(entries.map(([key, member]) => [key, reverseKeys(member)]));
}
