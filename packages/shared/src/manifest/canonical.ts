import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

/**
 * JSON with object keys sorted and no whitespace, so that the bytes signed do not depend on how a
 * manifest was built or pretty-printed. Arrays keep their order; undefined members are dropped.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('non-finite number');
    return JSON.stringify(value);
  }
  // Loops and string appends rather than entries/filter/map/join: this runs for every manifest
  // signed and verified, and the intermediate arrays were half its time.
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) text += ',';
      text += canonicalJson(value[i] ?? null);
    }
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  // Default sort: by UTF-16 code units, as `<` compares strings.
  const keys = Object.keys(record).sort();
  let text = '{';
  for (const key of keys) {
    const member = record[key];
    if (member === undefined) continue;
    if (text.length > 1) text += ',';
    text += `${JSON.stringify(key)}:${canonicalJson(member)}`;
  }
  return `${text}}`;
}

/** First 16 hex digits of the SHA-256 of the raw public key. */
export function keyIdOf(publicKey: KeyObject | string): string {
  const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}
