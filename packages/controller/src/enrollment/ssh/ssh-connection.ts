import { Client, type ConnectConfig } from 'ssh2';
import { hostKeyOf, type HostKey } from './known-hosts.js';

/** What ran on the device: exit code (null when killed by a signal) and its output. */
export interface RemoteResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A shell on the device, as the enrollment uses it: argv in, exit code and output out. */
export interface RemoteShell {
  /** Runs argv (each word quoted for the remote shell); `input` goes to its standard input. */
  run(argv: readonly string[], input?: string | Buffer): Promise<RemoteResult>;
  close(): void;
}

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  /** A private key (OpenSSH or PEM form), unencrypted. */
  privateKey?: Buffer;
  /** An ssh-agent socket (SSH_AUTH_SOCK). */
  agent?: string;
  /** Host key algorithms to offer, when known_hosts narrows them. */
  hostKeyAlgorithms?: string[];
  readyTimeoutMs?: number;
}

/** Decides whether the presented host key may be trusted; a string is the reason it may not. */
export type HostKeyCheck = (key: HostKey) => true | string;

/** The connection failed: the host key was refused (`reason`), or ssh2 said why. */
export class SshConnectError extends Error {}

/**
 * Connects with ssh2 and authenticates. The host key is checked before authentication (ssh2's
 * hostVerifier): a refused key ends the handshake with the check's reason, and nothing of ours
 * (no key, no password) reaches the host.
 */
export async function connectSsh(
  target: SshTarget,
  checkHostKey: HostKeyCheck,
): Promise<{ shell: RemoteShell; hostKey: HostKey }> {
  const client = new Client();
  let presented: HostKey | undefined;
  let refusal: string | undefined;
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.username,
    readyTimeout: target.readyTimeoutMs ?? 20_000,
    hostVerifier: (blob: Buffer) => {
      presented = hostKeyOf(blob);
      const verdict = checkHostKey(presented);
      if (verdict === true) return true;
      refusal = verdict;
      return false;
    },
    ...(target.privateKey ? { privateKey: target.privateKey } : {}),
    ...(target.agent ? { agent: target.agent } : {}),
    ...(target.hostKeyAlgorithms
      ? { algorithms: { serverHostKey: target.hostKeyAlgorithms as never } }
      : {}),
  };
  await new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    client.once('error', (error: Error & { level?: string }) => {
      client.end();
      if (refusal) reject(new SshConnectError(refusal));
      else if (error.level === 'client-authentication') {
        reject(
          new SshConnectError(`authentication as ${target.username} failed (${error.message})`),
        );
      } else reject(new SshConnectError(error.message));
    });
    client.connect(config);
  });
  // Errors after `ready` (a dropped connection) fail the command running at the time.
  client.on('error', () => undefined);
  return { shell: new Ssh2Shell(client), hostKey: presented! };
}

class Ssh2Shell implements RemoteShell {
  constructor(private readonly client: Client) {}

  run(argv: readonly string[], input?: string | Buffer): Promise<RemoteResult> {
    const command = argv.map(shellQuote).join(' ');
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, stream) => {
        if (error) return reject(error);
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => stdout.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        stream.once('close', (code: number | null) =>
          resolve({
            code: code ?? null,
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
          }),
        );
        stream.once('error', reject);
        stream.end(input);
      });
    });
  }

  close(): void {
    this.client.end();
  }
}

/** POSIX shell quoting: every word in single quotes, a quote as '\''. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
