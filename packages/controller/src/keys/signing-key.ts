import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import {
  formatIssues,
  generateSigningKey,
  KeyEndorsement,
  keyIdOf,
  type SigningKey,
} from '@podfleet/shared';
import { KEY_CHAIN_FILE, SIGNING_KEY_FILE } from '../serve/data-dir.js';

export interface SigningKeySource {
  /** The private key PEM itself (a secret handed to every controller of a fleet). */
  PODFLEET_SIGNING_KEY?: string;
  /** With PODFLEET_SIGNING_KEY: its rotation chain (JSON), as `podfleet keys rotate` prints it. */
  PODFLEET_SIGNING_KEY_CHAIN?: string;
  PODFLEET_DATA?: string;
}

export { KEY_CHAIN_FILE, SIGNING_KEY_FILE };

const KeyChain = z.array(KeyEndorsement);

/**
 * The controller's Ed25519 manifest-signing key: from PODFLEET_SIGNING_KEY when set (several
 * controllers of one fleet must share it), else `$PODFLEET_DATA/manifest-signing-key.pem`,
 * created on first start with mode 0600. After a rotation it comes with the endorsements that
 * lead to it (see `podfleet keys rotate`), which every manifest it signs carries.
 */
export function loadSigningKey(
  env: SigningKeySource,
  dataDir: string,
): { key: SigningKey; created: boolean } {
  if (env.PODFLEET_SIGNING_KEY?.trim()) {
    const key = fromPem(env.PODFLEET_SIGNING_KEY, 'PODFLEET_SIGNING_KEY');
    const chain = env.PODFLEET_SIGNING_KEY_CHAIN?.trim()
      ? parseChain(env.PODFLEET_SIGNING_KEY_CHAIN, 'PODFLEET_SIGNING_KEY_CHAIN')
      : [];
    return { key: withChain(key, chain), created: false };
  }
  const path = join(dataDir, SIGNING_KEY_FILE);
  const pem = readIfPresent(path);
  if (pem) {
    const chainPath = join(dataDir, KEY_CHAIN_FILE);
    const chainText = readIfPresent(chainPath);
    const chain = chainText ? parseChain(chainText, chainPath) : [];
    return { key: withChain(fromPem(pem, path), chain), created: false };
  }
  const key = generateSigningKey();
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, key.privateKeyPem, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return { key, created: true };
}

/**
 * The key with the endorsements that lead to it, oldest first: walked back from the key itself,
 * so that an endorsement of a key that never became the signing key (a rotation interrupted
 * between writing the chain and the key) is left out.
 */
export function withChain(key: SigningKey, chain: readonly KeyEndorsement[]): SigningKey {
  const path: KeyEndorsement[] = [];
  let keyId = key.keyId;
  for (;;) {
    const link = chain.findLast((e) => e.keyId === keyId && !path.includes(e));
    if (!link) break;
    path.unshift(link);
    keyId = link.endorsedBy;
  }
  return path.length > 0 ? { ...key, endorsements: path } : key;
}

export function parseChain(text: string, where: string): KeyEndorsement[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${where}: not JSON`);
  }
  const parsed = KeyChain.safeParse(json);
  if (!parsed.success) throw new Error(`${where}: ${formatIssues(parsed.error).join('; ')}`);
  return parsed.data;
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return undefined;
  }
}

export function fromPem(pem: string, where: string): SigningKey {
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
