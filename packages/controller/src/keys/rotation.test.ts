import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { endorseKey, generateSigningKey, signManifest, verifyManifest } from '@podfleet/shared';
import { runCliCaptured } from '../cli/testing.js';
import { rotateSigningKey } from './rotation.js';
import { KEY_CHAIN_FILE, loadSigningKey, SIGNING_KEY_FILE } from './signing-key.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'podfleet-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const manifest = {
  device: 'edge-1',
  generation: 3,
  issuedAt: '2026-11-29T10:00:00.000Z',
  services: [{ name: 'web', image: 'registry.example/acme/web:1' }],
};

describe('rotating the manifest-signing key', () => {
  it('replaces the key with one the old key endorsed, which agents on the old key follow', async () => {
    const { key: first } = loadSigningKey({}, dir);
    const rotation = await rotateSigningKey(dir);
    expect(rotation.previous.keyId).toBe(first.keyId);
    const { key } = loadSigningKey({}, dir);
    expect(key.keyId).toBe(rotation.key.keyId);
    expect(key.keyId).not.toBe(first.keyId);
    expect(key.endorsements).toMatchObject([{ endorsedBy: first.keyId, keyId: key.keyId }]);
    expect((await stat(join(dir, SIGNING_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'controller-public-key.pem'), 'utf8')).toBe(key.publicKeyPem);

    const signed = signManifest(manifest, key.privateKeyPem, key.endorsements);
    expect(verifyManifest(signed, [first.publicKeyPem])).toMatchObject({
      ok: true,
      rotatedTo: [key.publicKeyPem],
    });
    // The old private key is gone from the data directory.
    expect(await readFile(join(dir, SIGNING_KEY_FILE), 'utf8')).not.toBe(first.privateKeyPem);
  });

  it('chains rotations, so that an agent enrolled two keys ago still follows', async () => {
    const { key: first } = loadSigningKey({}, dir);
    await rotateSigningKey(dir);
    await rotateSigningKey(dir);
    const { key } = loadSigningKey({}, dir);
    expect(key.endorsements).toHaveLength(2);
    const signed = signManifest(manifest, key.privateKeyPem, key.endorsements);
    expect(verifyManifest(signed, [first.publicKeyPem])).toMatchObject({
      ok: true,
      rotatedTo: [key.publicKeyPem],
    });
  });

  it('leaves out an endorsement of a key that never became the signing key', async () => {
    const { key: first } = loadSigningKey({}, dir);
    // A rotation interrupted after the chain was written and before the key was.
    const lost = endorseKey(generateSigningKey().publicKeyPem, first.privateKeyPem);
    await writeFile(join(dir, KEY_CHAIN_FILE), JSON.stringify([lost]));
    expect(loadSigningKey({}, dir).key.endorsements).toBeUndefined();
    await rotateSigningKey(dir);
    const { key } = loadSigningKey({}, dir);
    expect(key.endorsements).toMatchObject([{ endorsedBy: first.keyId, keyId: key.keyId }]);
    const signed = signManifest(manifest, key.privateKeyPem, key.endorsements);
    expect(verifyManifest(signed, [first.publicKeyPem]).ok).toBe(true);
  });

  it('reads the chain beside PODFLEET_SIGNING_KEY from PODFLEET_SIGNING_KEY_CHAIN', async () => {
    loadSigningKey({}, dir);
    await rotateSigningKey(dir);
    const env = {
      PODFLEET_SIGNING_KEY: await readFile(join(dir, SIGNING_KEY_FILE), 'utf8'),
      PODFLEET_SIGNING_KEY_CHAIN: await readFile(join(dir, KEY_CHAIN_FILE), 'utf8'),
    };
    expect(loadSigningKey(env, '/nonexistent').key.endorsements).toHaveLength(1);
    expect(() =>
      loadSigningKey({ ...env, PODFLEET_SIGNING_KEY_CHAIN: '[{}]' }, '/nonexistent'),
    ).toThrow(/^PODFLEET_SIGNING_KEY_CHAIN: \[0\]\.publicKey: /);
  });
});

describe('podfleet keys', () => {
  it('rotate prints the old and new key ids; show prints the chain', async () => {
    const { key: first } = loadSigningKey({}, dir);
    const rotated = await runCliCaptured(['keys', 'rotate', '--data', dir, '--json']);
    expect(rotated).toMatchObject({ code: 0, stderr: '' });
    const { previous, key } = JSON.parse(rotated.stdout);
    expect(previous).toBe(first.keyId);
    const shown = await runCliCaptured(['keys', 'show', '--data', dir]);
    expect(shown.code).toBe(0);
    expect(shown.stdout.split('\n')[0]).toBe(`key ${key} (rotations: ${first.keyId} → ${key})`);
  });

  it('exits 2 with one line when there is no key to rotate', async () => {
    const run = await runCliCaptured(['keys', 'rotate', '--data', join(dir, 'empty')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      `podfleet: rotating the key in ${join(dir, 'empty')}: no manifest-signing-key.pem (podfleet serve creates it at its first start)\n`,
    );
  });
});
