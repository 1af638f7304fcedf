import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson, keyIdOf } from './canonical.js';

const KeyId = z.string().regex(/^[0-9a-f]{16}$/);
const Signature = z
  .string()
  .regex(/^[A-Za-z0-9+/]{86}==$/, { message: 'not a base64 Ed25519 signature' });

/**
 * A controller key rotation: the new public key, signed by the key it replaces. Manifests carry
 * the chain of these (oldest first), so that an agent trusting any earlier key can follow it.
 */
export const KeyEndorsement = z.strictObject({
  /** The new key (Ed25519, SPKI PEM). */
  publicKey: z.string().max(1000),
  keyId: KeyId,
  /** The key that signed this endorsement: the one being replaced. */
  endorsedBy: KeyId,
  issuedAt: z.iso.datetime(),
  /** Base64 Ed25519 signature by `endorsedBy` over endorsedBytes(). */
  value: Signature,
});
export type KeyEndorsement = z.output<typeof KeyEndorsement>;

/**
 * What an endorsement signs. `purpose` keeps these bytes from ever reading as a manifest body (and
 * a manifest's as an endorsement), so a signature made for one cannot be used as the other.
 */
function endorsedBytes(endorsement: Omit<KeyEndorsement, 'value'>): Buffer {
  const { publicKey, keyId, endorsedBy, issuedAt } = endorsement;
  return Buffer.from(
    canonicalJson({
      purpose: 'podfleet/v1 controller key rotation',
      publicKey,
      keyId,
      endorsedBy,
      issuedAt,
    }),
  );
}

/** The old key's word that `newPublicKeyPem` replaces it. */
export function endorseKey(
  newPublicKeyPem: string,
  oldPrivateKeyPem: string,
  issuedAt: Date = new Date(),
): KeyEndorsement {
  const oldKey = createPrivateKey(oldPrivateKeyPem);
  const body = {
    publicKey: createPublicKey(newPublicKeyPem).export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(newPublicKeyPem),
    endorsedBy: keyIdOf(createPublicKey(oldKey)),
    issuedAt: issuedAt.toISOString(),
  };
  return { ...body, value: sign(null, endorsedBytes(body), oldKey).toString('base64') };
}

/**
 * The keys trusted after following `chain` from `trusted`: each endorsement signed by a trusted
 * key replaces the whole trusted set with its new key (after a rotation only the new key counts);
 * endorsements by keys not trusted (older links, or forgeries) are skipped. Returns `trusted`
 * itself when no endorsement applies.
 */
export function followKeyChain(
  trusted: readonly string[],
  chain: readonly KeyEndorsement[],
): readonly string[] {
  let current = trusted;
  for (const endorsement of chain) {
    const signer = current.find((pem) => keyIdOf(pem) === endorsement.endorsedBy);
    if (!signer || !endorsementHolds(endorsement, signer)) continue;
    current = [endorsement.publicKey];
  }
  return current;
}

function endorsementHolds(endorsement: KeyEndorsement, signerPem: string): boolean {
  try {
    const newKey = createPublicKey(endorsement.publicKey);
    if (newKey.asymmetricKeyType !== 'ed25519' || keyIdOf(newKey) !== endorsement.keyId) {
      return false;
    }
    return verify(
      null,
      endorsedBytes(endorsement),
      createPublicKey(signerPem),
      Buffer.from(endorsement.value, 'base64'),
    );
  } catch {
    return false;
  }
}
