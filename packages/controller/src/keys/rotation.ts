import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  endorseKey,
  generateSigningKey,
  type KeyEndorsement,
  type SigningKey,
} from '@podfleet/shared';
import {
  KEY_CHAIN_FILE,
  loadSigningKey,
  parseChain,
  SIGNING_KEY_FILE,
  withChain,
} from './signing-key.js';

export interface Rotation {
  previous: SigningKey;
  key: SigningKey;
}

/**
 * Replaces the manifest-signing key in `dataDir` with a new one, endorsed by the old: the
 * endorsement is appended to the chain file first, then the key file is replaced (each through a
 * temporary file and a rename), so an interruption leaves the old key working. Controllers sign
 * with the new key from their next start on, and re-sign every stored manifest with it then
 * (resignManifests); agents follow the chain and trust the new key alone from then on.
 */
export async function rotateSigningKey(dataDir: string, now = new Date()): Promise<Rotation> {
  if (!existsSync(join(dataDir, SIGNING_KEY_FILE))) {
    throw new Error(`no ${SIGNING_KEY_FILE} (podfleet serve creates it at its first start)`);
  }
  const { key: previous } = loadSigningKey({}, dataDir);
  const fresh = generateSigningKey();
  const endorsement = endorseKey(fresh.publicKeyPem, previous.privateKeyPem, now);
  const chainPath = join(dataDir, KEY_CHAIN_FILE);
  const chain = [...(await readChain(chainPath)), endorsement];
  await replace(chainPath, `${JSON.stringify(chain, null, 2)}\n`, 0o644);
  await replace(join(dataDir, SIGNING_KEY_FILE), fresh.privateKeyPem, 0o600);
  await writeFile(join(dataDir, 'controller-public-key.pem'), fresh.publicKeyPem);
  return { previous, key: withChain(fresh, chain) };
}

async function readChain(path: string): Promise<KeyEndorsement[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return parseChain(text, path);
}

async function replace(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  await rename(temporary, path);
}
