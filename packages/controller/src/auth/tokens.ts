import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'pft_';

/** A new API token: what the user keeps, and the hash the controller stores. */
export function issueToken(): { token: string; hash: string } {
  const token = `${PREFIX}${randomBytes(24).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

/** Tokens are stored only as their SHA-256: a database leak does not leak credentials. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}
