import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { formatIssues } from '../spec/text.js';
import { canonicalJson, keyIdOf } from './canonical.js';
import { DeviceManifest, UnsignedManifest } from './device-manifest.js';
import { followKeyChain, type KeyEndorsement } from './key-endorsement.js';

export { canonicalJson, keyIdOf } from './canonical.js';

export interface SigningKey {
  privateKeyPem: string;
  publicKeyPem: string;
  keyId: string;
  /**
   * How this key was reached from earlier ones (oldest first), when it replaced one: every
   * manifest signed with it carries the chain, so that agents enrolled under an earlier key
   * follow the rotation.
   */
  endorsements?: readonly KeyEndorsement[];
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}

// Parsing a PEM costs more than signing with it (measured: 0.4 ms against 0.05 ms), and a
// controller signs thousands of manifests with one key: keep the parsed keys.
const parsedKeys = new Map<string, { privateKey: KeyObject; keyId: string }>();

function parsedKey(privateKeyPem: string) {
  let parsed = parsedKeys.get(privateKeyPem);
  if (!parsed) {
    const privateKey = createPrivateKey(privateKeyPem);
    parsed = { privateKey, keyId: keyIdOf(createPublicKey(privateKey)) };
    if (parsedKeys.size >= 8) parsedKeys.clear();
    parsedKeys.set(privateKeyPem, parsed);
  }
  return parsed;
}

const parsedPublicKeys = new Map<string, { publicKey: KeyObject; keyId: string }>();

function parsedPublicKey(publicKeyPem: string) {
  let parsed = parsedPublicKeys.get(publicKeyPem);
  if (!parsed) {
    const publicKey = createPublicKey(publicKeyPem);
    parsed = { publicKey, keyId: keyIdOf(publicKey) };
    if (parsedPublicKeys.size >= 64) parsedPublicKeys.clear();
    parsedPublicKeys.set(publicKeyPem, parsed);
  }
  return parsed;
}

/**
 * Validates the manifest (defaults filled in) and signs its canonical form. A key rotation's
 * endorsements go into the manifest as `keyChain`, under the signature.
 */
export function signManifest(
  manifest: UnsignedManifest,
  privateKeyPem: string,
  endorsements: readonly KeyEndorsement[] = [],
): DeviceManifest {
  const body = UnsignedManifest.parse(
    endorsements.length > 0 ? { ...manifest, keyChain: [...endorsements] } : manifest,
  );
  const { privateKey, keyId } = parsedKey(privateKeyPem);
  const value = sign(null, Buffer.from(canonicalJson(body)), privateKey).toString('base64');
  return { ...body, signature: { alg: 'ed25519', keyId, value } };
}

export type VerifyResult =
  | {
      ok: true;
      manifest: DeviceManifest;
      /** Set when the manifest's keyChain rotated the trust: the keys to trust from now on. */
      rotatedTo?: readonly string[];
    }
  | { ok: false; reason: string };

/**
 * Checks a received manifest: valid against the schema, signed by one of the trusted public keys,
 * or by a key its keyChain reaches from them (a rotation announced by a trusted key; see
 * followKeyChain). Never throws on bad input; the reason is one line.
 */
export function verifyManifest(
  input: unknown,
  trustedPublicKeysPem: readonly string[],
): VerifyResult {
  const parsed = DeviceManifest.safeParse(input);
  if (!parsed.success)
    return { ok: false, reason: `invalid manifest: ${formatIssues(parsed.error).join('; ')}` };
  const { signature } = parsed.data;
  // The bytes signed are the ones sent: verify over the input as received, not over what this
  // schema version would fill in.
  const { signature: _sent, ...body } = input as Record<string, unknown>;
  let trusted = trustedPublicKeysPem;
  let rotatedTo: readonly string[] | undefined;
  const known = (keys: readonly string[]) =>
    keys.map(parsedPublicKey).find((k) => k.keyId === signature.keyId);
  let key = known(trusted);
  if (!key && parsed.data.keyChain) {
    trusted = followKeyChain(trustedPublicKeysPem, parsed.data.keyChain);
    key = known(trusted);
    if (key) rotatedTo = trusted;
  }
  if (!key) return { ok: false, reason: `signed by unknown key ${signature.keyId}` };
  const valid = verify(
    null,
    Buffer.from(canonicalJson(body)),
    key.publicKey,
    Buffer.from(signature.value, 'base64'),
  );
  if (!valid) return { ok: false, reason: 'signature does not verify' };
  return rotatedTo
    ? { ok: true, manifest: parsed.data, rotatedTo }
    : { ok: true, manifest: parsed.data };
}
