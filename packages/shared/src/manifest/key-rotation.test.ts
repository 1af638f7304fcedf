import { describe, expect, it } from 'vitest';
import { endorseKey, followKeyChain, type KeyEndorsement } from './key-endorsement.js';
import { generateSigningKey, signManifest, verifyManifest } from './signing.js';

const k1 = generateSigningKey();
const k2 = generateSigningKey();
const k3 = generateSigningKey();
const attacker = generateSigningKey();
const at = new Date('2026-11-29T10:00:00.000Z');
const unsigned = {
  device: 'edge-0001',
  generation: 7,
  issuedAt: '2026-11-29T10:00:00.000Z',
  services: [{ name: 'web', image: 'registry.example/acme/web:1.4' }],
};
const k1ToK2 = endorseKey(k2.publicKeyPem, k1.privateKeyPem, at);
const k2ToK3 = endorseKey(k3.publicKeyPem, k2.privateKeyPem, at);

describe('controller key rotation', () => {
  it('follows a rotation announced by the trusted key: the new key alone is trusted after it', () => {
    const manifest = signManifest(unsigned, k2.privateKeyPem, [k1ToK2]);
    expect(manifest.keyChain).toEqual([k1ToK2]);
    const result = verifyManifest(JSON.parse(JSON.stringify(manifest)), [k1.publicKeyPem]);
    expect(result).toMatchObject({ ok: true, rotatedTo: [k1ToK2.publicKey] });
    expect(k1ToK2).toMatchObject({ keyId: k2.keyId, endorsedBy: k1.keyId });
  });

  it('leaves the trust as it is when the signing key is trusted already', () => {
    const manifest = signManifest(unsigned, k2.privateKeyPem, [k1ToK2]);
    const result = verifyManifest(manifest, [k1.publicKeyPem, k2.publicKeyPem]);
    expect(result.ok && result.rotatedTo).toBeUndefined();
  });

  it('refuses the old key once the trust moved to the new one', () => {
    const trusted = followKeyChain([k1.publicKeyPem], [k1ToK2]);
    expect(verifyManifest(signManifest(unsigned, k1.privateKeyPem), trusted)).toEqual({
      ok: false,
      reason: `signed by unknown key ${k1.keyId}`,
    });
  });

  it('refuses a manifest signed by a key no trusted key announced', () => {
    const manifest = signManifest(unsigned, attacker.privateKeyPem);
    expect(verifyManifest(manifest, [k1.publicKeyPem])).toEqual({
      ok: false,
      reason: `signed by unknown key ${attacker.keyId}`,
    });
  });

  it('refuses an announcement signed by another key that claims to be the trusted one', () => {
    const forged: KeyEndorsement = {
      ...endorseKey(attacker.publicKeyPem, attacker.privateKeyPem, at),
      endorsedBy: k1.keyId,
    };
    const manifest = signManifest(unsigned, attacker.privateKeyPem, [forged]);
    expect(verifyManifest(manifest, [k1.publicKeyPem])).toEqual({
      ok: false,
      reason: `signed by unknown key ${attacker.keyId}`,
    });
  });

  it('refuses a genuine announcement whose new key was swapped for another', () => {
    const swapped: KeyEndorsement = {
      ...k1ToK2,
      publicKey: attacker.publicKeyPem,
      keyId: attacker.keyId,
    };
    const manifest = signManifest(unsigned, attacker.privateKeyPem, [swapped]);
    expect(verifyManifest(manifest, [k1.publicKeyPem]).ok).toBe(false);
    expect(followKeyChain([k1.publicKeyPem], [swapped])).toEqual([k1.publicKeyPem]);
  });

  it('refuses a manifest whose chain was changed after signing', () => {
    const manifest = signManifest(unsigned, k3.privateKeyPem, [k1ToK2, k2ToK3]);
    const shortened = { ...manifest, keyChain: [k1ToK2] };
    expect(verifyManifest(shortened, [k1.publicKeyPem, k3.publicKeyPem])).toEqual({
      ok: false,
      reason: 'signature does not verify',
    });
  });

  it('follows two rotations from the first key, and only the second from the middle one', () => {
    const manifest = signManifest(unsigned, k3.privateKeyPem, [k1ToK2, k2ToK3]);
    expect(verifyManifest(manifest, [k1.publicKeyPem])).toMatchObject({
      ok: true,
      rotatedTo: [k2ToK3.publicKey],
    });
    expect(verifyManifest(manifest, [k2.publicKeyPem])).toMatchObject({
      ok: true,
      rotatedTo: [k2ToK3.publicKey],
    });
    // A device already on k3 ignores the chain.
    const current = verifyManifest(manifest, [k3.publicKeyPem]);
    expect(current.ok && current.rotatedTo).toBeUndefined();
  });

  it('does not let an endorsement signature pass as a manifest signature', () => {
    const manifest = signManifest(unsigned, k2.privateKeyPem);
    const borrowed = {
      ...manifest,
      signature: { ...manifest.signature, keyId: k1.keyId, value: k1ToK2.value },
    };
    expect(verifyManifest(borrowed, [k1.publicKeyPem])).toEqual({
      ok: false,
      reason: 'signature does not verify',
    });
  });
});
