import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

// Mosquitto 2.0's password-file hash (mosquitto_passwd's default, "$7$"): PBKDF2-HMAC-SHA512 with
// 101 iterations, a 12-byte salt and a 64-byte key, each in base64: `$7$101$SALT$HASH`.
const ITERATIONS = 101;
const SALT_BYTES = 12;
const KEY_BYTES = 64;

/** The hash Mosquitto stores for `password` (what `mosquitto_passwd -b` writes after `user:`). */
export function mosquittoPasswordHash(password: string, salt = randomBytes(SALT_BYTES)): string {
  const key = pbkdf2Sync(password, salt, ITERATIONS, KEY_BYTES, 'sha512');
  return `$7$${ITERATIONS}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Whether `password` matches a `$7$` hash (tests, and a check before a file is trusted). */
export function mosquittoPasswordMatches(password: string, hash: string): boolean {
  const match = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
  if (!match) return false;
  const expected = Buffer.from(match[3]!, 'base64');
  const actual = pbkdf2Sync(
    password,
    Buffer.from(match[2]!, 'base64'),
    Number(match[1]),
    expected.length,
    'sha512',
  );
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A device's broker password: 32 random bytes, URL-safe, so it survives YAML and URLs as is. */
export function newBrokerPassword(): string {
  return randomBytes(32).toString('base64url');
}
