import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateSigningKey, keyIdOf, type SigningKey } from '@podfleet/shared';

export interface SigningKeySource {
  /** The private key PEM itself (a secret handed to every controller of a fleet). */
  PODFLEET_SIGNING_KEY?: string;
  PODFLEET_DATA?: string;
}

/**
 * The controller's Ed25519 manifest-signing key: from PODFLEET_SIGNING_KEY when set (several
 * controllers of one fleet must share it), else `$PODFLEET_DATA/manifest-signing-key.pem`,
 * created on first start with mode 0600.
 */
export function loadSigningKey(
  env: SigningKeySource,
  dataDir: string,
): { key: SigningKey; created: boolean } {
  if (env.PODFLEET_SIGNING_KEY?.trim())
    return { key: fromPem(env.PODFLEET_SIGNING_KEY, 'PODFLEET_SIGNING_KEY'), created: false };
  const path = join(dataDir, 'manifest-signing-key.pem');
  let pem: string | undefined;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (pem) return { key: fromPem(pem, path), created: false };
  const key = generateSigningKey();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, key.privateKeyPem, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return { key, created: true };
}

function fromPem(pem: string, where: string): SigningKey {
  let privateKey;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new Error(`${where}: not a private key PEM (${(error as Error).message})`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new Error(`${where}: an Ed25519 key is needed, not ${privateKey.asymmetricKeyType}`);
  }
  const publicKey = createPublicKey(privateKey);
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}
