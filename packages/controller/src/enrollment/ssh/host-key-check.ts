import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HostKeyCheck } from './ssh-connection.js';
import {
  entriesFor,
  hostKeyAlgorithmsFor,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  verdictFor,
  type HostKey,
  type KnownHostEntry,
} from './known-hosts.js';

export interface HostKeyPolicy {
  /** known_hosts to read (and append to with acceptNew). */
  knownHostsFile: string;
  /** `SHA256:…`: the one key to accept; known_hosts is not consulted. */
  pinned?: string;
  /** Accept and record a key known_hosts has nothing for (never a changed one). */
  acceptNew: boolean;
}

/** How the presented key was trusted, for the progress line and --json. */
export type HostKeyTrust = 'pinned' | 'known' | 'new';

export interface PreparedHostKeyCheck {
  check: HostKeyCheck;
  /** Offered to the server when known_hosts knows the host (only its known types). */
  algorithms: string[] | undefined;
  /** After the handshake: how the key was trusted; a new one is appended to known_hosts. */
  settle(key: HostKey): Promise<{ trust: HostKeyTrust; where: string }>;
}

/**
 * The host key rule, as ssh(1) with StrictHostKeyChecking=yes (or accept-new) applies it: a key
 * known_hosts holds for the host is accepted; a host it knows with another key is refused always
 * (a changed key is what a man in the middle looks like); a host it does not know is refused
 * unless acceptNew, which then records the key. `--host-key SHA256:…` replaces all of that with
 * one fingerprint the operator got from the device out of band.
 */
export async function prepareHostKeyCheck(
  policy: HostKeyPolicy,
  host: string,
  port: number,
): Promise<PreparedHostKeyCheck> {
  const name = knownHostName(host, port);
  if (policy.pinned !== undefined) {
    const pinned = policy.pinned;
    return {
      check: (key) =>
        key.fingerprint === pinned ||
        `host key mismatch: ${name} presented ${key.type} ${key.fingerprint}, not the --host-key ${pinned}`,
      algorithms: undefined,
      settle: async () => ({ trust: 'pinned', where: '--host-key' }),
    };
  }
  const file = policy.knownHostsFile;
  const entries = await readKnownHosts(file);
  const own = entriesFor(entries, name);
  const algorithms = own.length > 0 ? hostKeyAlgorithmsFor(own.map((e) => e.keyType)) : undefined;
  return {
    algorithms,
    check: (key) => {
      const verdict = verdictFor(entries, name, key);
      switch (verdict.kind) {
        case 'known':
          return true;
        case 'revoked':
          return `host key ${key.type} ${key.fingerprint} of ${name} is marked @revoked in ${file}:${verdict.line}`;
        case 'changed':
          return `host key of ${name} has CHANGED: it presented ${key.type} ${key.fingerprint}, ${file} holds another (line ${verdict.lines.join(', ')}); refused, whatever the flags (remove the old entry only if you know why it changed)`;
        case 'unknown':
          return policy.acceptNew
            ? true
            : `host key of ${name} is unknown: ${key.type} ${key.fingerprint} is in no entry of ${file}; check it on the device (ssh-keygen -lf /etc/ssh/ssh_host_${shortType(key.type)}_key.pub) and pass --host-key ${key.fingerprint}, or --accept-new-host-key to trust it on first use`;
      }
    },
    settle: async (key) => {
      const verdict = verdictFor(entries, name, key);
      if (verdict.kind === 'known') return { trust: 'known', where: `${file}:${verdict.line}` };
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      await appendFile(file, knownHostsLine(name, key), { mode: 0o600 });
      return { trust: 'new', where: `recorded in ${file}` };
    },
  };
}

async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(file, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`${file}: cannot read (${(error as NodeJS.ErrnoException).code})`);
  }
}

/** The file name part sshd uses for a key type: ssh-ed25519 → ed25519, ecdsa-sha2-* → ecdsa. */
function shortType(type: string): string {
  if (type.startsWith('ecdsa')) return 'ecdsa';
  return type.replace(/^ssh-/, '');
}
