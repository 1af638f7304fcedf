import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const DEPLOY = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));

export interface ManagedMosquitto {
  url: string;
  port: number;
  dir: string;
  /** The password file the controller writes, and the pid file it signals. */
  passwordFile: string;
  pidFile: string;
  /** What the broker logged so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * A private Mosquitto on a free loopback port with deploy/mosquitto's config and ACL, a pid file,
 * and a password file that starts empty: the controller under test writes it.
 * `extraConfig` is appended (TLS listeners).
 */
export async function startManagedMosquitto(
  extraConfig: (dir: string) => Promise<string> | string = () => '',
): Promise<ManagedMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-broker-access-'));
  const port = await freePort();
  const passwordFile = join(dir, 'passwd');
  const pidFile = join(dir, 'mosquitto.pid');
  await writeFile(passwordFile, '', { mode: 0o600 });
  const config = (await readFile(join(DEPLOY, 'mosquitto.conf'), 'utf8'))
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace('/mosquitto/data/passwd', passwordFile)
    .replace('/mosquitto/config/acl', join(DEPLOY, 'acl'))
    .replace(/^persistence true$/m, 'persistence false')
    .replace(/^persistence_location .*$/m, '');
  const extra = await extraConfig(dir);
  // Root would otherwise drop to the mosquitto user, which cannot read the temporary directory.
  await writeFile(
    join(dir, 'mosquitto.conf'),
    `${config}\npid_file ${pidFile}\nuser root\n${extra}\n`,
  );
  const broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  broker.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const deadline = Date.now() + 5000;
  while (!log.includes(' running')) {
    if (broker.exitCode !== null || Date.now() > deadline) {
      broker.kill('SIGKILL');
      throw new Error(`mosquitto did not start: ${log.trim()}`);
    }
    await sleep(20);
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dir,
    passwordFile,
    pidFile,
    log: () => log,
    async stop() {
      broker.kill('SIGTERM');
      if (broker.exitCode === null) await new Promise((resolve) => broker.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
