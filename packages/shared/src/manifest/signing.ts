import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { z } from 'zod';
import { ServiceSpec } from '../spec/service-spec.js';
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

// Signatures being computed at once by signManifests: enough to keep libuv's threadpool busy,
// few enough that file I/O queued behind them (the controller's ingest journal) waits little.
const SIGNING_LANES = 16;

// A manifest's own fields: signManifests checks services and keyChain apart.
const ManifestEnvelope = z.strictObject({
  device: UnsignedManifest.shape.device,
  generation: UnsignedManifest.shape.generation,
  issuedAt: UnsignedManifest.shape.issuedAt,
});

// A fleet's manifests share their service spec objects (one per revision and image): each is
// validated and serialized once, not once per device. Specs must not change after signing.
const validatedSpecs = new WeakMap<object, { spec: ServiceSpec; json: string }>();

function validatedSpec(input: unknown): { spec: ServiceSpec; json: string } {
  const cached = typeof input === 'object' && input !== null && validatedSpecs.get(input);
  if (cached) return cached;
  const spec = ServiceSpec.parse(input);
  const entry = { spec, json: canonicalJson(spec) };
  if (typeof input === 'object' && input !== null) validatedSpecs.set(input, entry);
  return entry;
}

function validatedChain(endorsements: readonly KeyEndorsement[]) {
  const value = UnsignedManifest.shape.keyChain.unwrap().parse([...endorsements]);
  return { value, json: canonicalJson(value) };
}

/** The validated body of one manifest and its canonical JSON, the bytes to sign. */
function signableBody(
  manifest: UnsignedManifest,
  keyChain: { value: KeyEndorsement[]; json: string } | undefined,
): { body: Omit<DeviceManifest, 'signature'>; json: string } {
  const { services: inputs, ...envelope } = manifest;
  const { device, generation, issuedAt } = ManifestEnvelope.parse(envelope);
  if (!Array.isArray(inputs)) throw new Error('services: not an array');
  const names = new Set<string>();
  const services: ServiceSpec[] = [];
  let servicesJson = '';
  for (const input of inputs) {
    const { spec, json } = validatedSpec(input);
    if (names.has(spec.name)) throw new Error(`duplicate service ${spec.name}`);
    names.add(spec.name);
    services.push(spec);
    servicesJson += servicesJson ? `,${json}` : json;
  }
  // canonicalJson's layout: keys in order (device, generation, issuedAt, keyChain, services).
  const json = `{"device":${JSON.stringify(device)},"generation":${canonicalJson(generation)},"issuedAt":${JSON.stringify(issuedAt)}${keyChain ? `,"keyChain":${keyChain.json}` : ''},"services":[${servicesJson}]}`;
  const body = { device, generation, issuedAt, services };
  return { body: keyChain ? { ...body, keyChain: keyChain.value } : body, json };
}

// The JSON text of what signManifests signed: built from the signed bytes, so that storing and
// publishing 10,000 manifests does not serialize each of them twice more.
const signedTexts = new WeakMap<DeviceManifest, string>();

/** A signed manifest as JSON text (canonical when signManifests made it). */
export function manifestJson(manifest: DeviceManifest): string {
  return signedTexts.get(manifest) ?? JSON.stringify(manifest);
}

/**
 * signManifest for many manifests with one key, as a recompute of a fleet signs them: the same
 * validation and bytes, but each distinct service spec object is validated and serialized once,
 * and the Ed25519 signatures are computed in libuv's threadpool (node:crypto's `sign` with a
 * callback) while the event loop prepares the next bodies. Rejects with signManifest's error
 * when a manifest is invalid.
 */
export async function signManifests(
  manifests: readonly UnsignedManifest[],
  privateKeyPem: string,
  endorsements: readonly KeyEndorsement[] = [],
): Promise<DeviceManifest[]> {
  const { privateKey, keyId } = parsedKey(privateKeyPem);
  const keyChain = endorsements.length > 0 ? validatedChain(endorsements) : undefined;
  const signed: DeviceManifest[] = new Array<DeviceManifest>(manifests.length);
  let next = 0;
  const lane = async () => {
    while (next < manifests.length) {
      const index = next++;
      const manifest = manifests[index]!;
      let prepared: ReturnType<typeof signableBody>;
      try {
        prepared = signableBody(manifest, keyChain);
      } catch {
        // Not the shape a recompute builds (or invalid): signManifest decides, with its error.
        signed[index] = signManifest(manifest, privateKeyPem, endorsements);
        continue;
      }
      const value = await new Promise<string>((resolve, reject) =>
        sign(null, Buffer.from(prepared.json), privateKey, (error, signature) =>
          error ? reject(error) : resolve(signature.toString('base64')),
        ),
      );
      const signature = { alg: 'ed25519' as const, keyId, value };
      const result = { ...prepared.body, signature };
      // canonicalJson's layout: "signature" sorts after every other member of a manifest.
      const text = `${prepared.json.slice(0, -1)},"signature":${JSON.stringify(signature)}}`;
      signedTexts.set(result, text);
      signed[index] = result;
    }
  };
  await Promise.all(Array.from({ length: Math.min(SIGNING_LANES, manifests.length) }, lane));
  return signed;
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
