import { createHash, createHmac } from 'node:crypto';

/**
 * OpenSSH's known_hosts, read the way ssh(1) reads it (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
 * `[marker] patterns keytype base64-key [comment]`, patterns comma-separated with `*`, `?` and
 * `!` negation, `[host]:port` for a port other than 22, or hashed (`|1|salt|hmac-sha1`).
 * Pure: the caller reads and appends the file.
 */
export interface KnownHostEntry {
  marker: 'revoked' | 'cert-authority' | undefined;
  patterns: string;
  keyType: string;
  /** The key blob, base64 as in the file. */
  key: string;
  /** 1-based, for messages (`known_hosts:3`). */
  line: number;
}

/** A host key as the server sent it: the SSH wire blob. */
export interface HostKey {
  type: string;
  /** base64 of the blob, as known_hosts holds it. */
  base64: string;
  /** `SHA256:…` as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

export function hostKeyOf(blob: Buffer): HostKey {
  // The blob starts with the key type as an SSH string (uint32 length, bytes).
  const length = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = blob.subarray(4, 4 + length).toString('latin1');
  return { type, base64: blob.toString('base64'), fingerprint: fingerprintOf(blob) };
}

/** OpenSSH's SHA256 fingerprint: unpadded base64 of the blob's SHA-256. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name known_hosts uses for a host: `host`, or `[host]:port` off port 22. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === '' || fields[0]!.startsWith('#')) return;
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') {
      marker = fields.shift()!.slice(1) as KnownHostEntry['marker'];
    }
    const [patterns, keyType, key] = fields;
    if (!patterns || !keyType || !key) return;
    entries.push({ marker, patterns, keyType, key, line: index + 1 });
  });
  return entries;
}

/** Whether an entry's patterns name `name` (`host` or `[host]:port`), negations winning. */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) return hashedMatch(patterns, name);
  let matched = false;
  for (const pattern of patterns.split(',')) {
    const negated = pattern.startsWith('!');
    if (!globMatch(negated ? pattern.slice(1) : pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function hashedMatch(field: string, name: string): boolean {
  const [, , salt, hash] = field.split('|');
  if (!salt || !hash) return false;
  const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return mac === hash;
}

function globMatch(pattern: string, name: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${regex}$`, 'i').test(name);
}

/** What known_hosts says about the key a host presented. */
export type HostKeyVerdict =
  | { kind: 'known'; line: number }
  | { kind: 'unknown' }
  | { kind: 'changed'; lines: number[]; knownTypes: string[] }
  | { kind: 'revoked'; line: number };

/** The entries for a host, not counting markers: what ssh(1) compares the presented key with. */
export function entriesFor(entries: readonly KnownHostEntry[], name: string): KnownHostEntry[] {
  return entries.filter((entry) => !entry.marker && patternsMatch(entry.patterns, name));
}

export function verdictFor(
  entries: readonly KnownHostEntry[],
  name: string,
  presented: HostKey,
): HostKeyVerdict {
  const revoked = entries.find(
    (entry) => entry.marker === 'revoked' && entry.key === presented.base64,
  );
  if (revoked) return { kind: 'revoked', line: revoked.line };
  const own = entriesFor(entries, name);
  const same = own.find(
    (entry) => entry.keyType === presented.type && entry.key === presented.base64,
  );
  if (same) return { kind: 'known', line: same.line };
  if (own.length === 0) return { kind: 'unknown' };
  return {
    kind: 'changed',
    lines: own.map((entry) => entry.line),
    knownTypes: [...new Set(own.map((entry) => entry.keyType))],
  };
}

/** The line `--accept-new-host-key` appends. */
export function knownHostsLine(name: string, key: HostKey): string {
  return `${name} ${key.type} ${key.base64}\n`;
}

/**
 * The host key algorithms to offer a host known_hosts already knows: only its known types, as
 * ssh(1) prefers them, so that a host which also has a key of another type is not taken for
 * changed, and one that lost the known type is. RSA keys sign with SHA-2 first.
 */
export function hostKeyAlgorithmsFor(knownTypes: readonly string[]): string[] {
  const algorithms: string[] = [];
  for (const type of knownTypes) {
    if (type === 'ssh-rsa') algorithms.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else algorithms.push(type);
  }
  return [...new Set(algorithms)];
}
