import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  hostKeyAlgorithmsFor,
  hostKeyOf,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  patternsMatch,
  verdictFor,
} from './known-hosts.js';

/** An ssh-ed25519 wire blob: string "ssh-ed25519", string key. */
function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  const string = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  return Buffer.concat([string(Buffer.from('ssh-ed25519')), string(raw)]);
}

const hashed = (name: string) => {
  const salt = randomBytes(20);
  const mac = createHmac('sha1', salt).update(name).digest('base64');
  return `|1|${salt.toString('base64')}|${mac}`;
};

describe('known_hosts', () => {
  const key = hostKeyOf(ed25519Blob());
  const other = hostKeyOf(ed25519Blob());

  it('reads the key type and the fingerprint as ssh-keygen -lf prints them', () => {
    expect(key.type).toBe('ssh-ed25519');
    expect(key.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });

  it('names hosts off port 22 as [host]:port, and matches patterns, negations and hashes', () => {
    expect(knownHostName('10.0.0.2', 22)).toBe('10.0.0.2');
    expect(knownHostName('10.0.0.2', 2222)).toBe('[10.0.0.2]:2222');
    expect(patternsMatch('pi-1,10.0.0.2', '10.0.0.2')).toBe(true);
    expect(patternsMatch('10.0.0.*', '10.0.0.2')).toBe(true);
    expect(patternsMatch('10.0.0.*,!10.0.0.2', '10.0.0.2')).toBe(false);
    expect(patternsMatch('10.0.0.2', '[10.0.0.2]:2222')).toBe(false);
    expect(patternsMatch(hashed('[10.0.0.2]:2222'), '[10.0.0.2]:2222')).toBe(true);
    expect(patternsMatch(hashed('10.0.0.2'), '10.0.0.3')).toBe(false);
  });

  it('knows a recorded key, refuses a changed or revoked one, and says unknown otherwise', () => {
    const name = '10.0.0.2';
    const file = [
      '# comment',
      `other-host ${other.type} ${other.base64}`,
      knownHostsLine(name, key).trim(),
    ].join('\n');
    expect(verdictFor(parseKnownHosts(file), name, key)).toEqual({ kind: 'known', line: 3 });
    expect(verdictFor(parseKnownHosts(file), name, other)).toEqual({
      kind: 'changed',
      lines: [3],
      knownTypes: ['ssh-ed25519'],
    });
    expect(verdictFor(parseKnownHosts(file), 'new-host', key)).toEqual({ kind: 'unknown' });
    const revoked = `@revoked * ${key.type} ${key.base64}\n${name} ${key.type} ${key.base64}\n`;
    expect(verdictFor(parseKnownHosts(revoked), name, key)).toEqual({ kind: 'revoked', line: 1 });
  });

  it('offers a known host only the key types recorded for it', () => {
    expect(hostKeyAlgorithmsFor(['ssh-ed25519', 'ssh-rsa'])).toEqual([
      'ssh-ed25519',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
    ]);
  });
});
