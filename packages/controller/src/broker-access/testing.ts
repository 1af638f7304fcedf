import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { mosquittoPasswordHash } from './mosquitto-password.js';
import { renderPasswordFile } from './password-file.js';

const DEPLOY = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));

export interface ManagedMosquitto {
  /** The devices' listener (deploy/mosquitto's 1883). */
  url: string;
  port: number;
  /** The controllers' listener (deploy/mosquitto's 1884): accounts of `controllersFile` only. */
  controllerUrl: string;
  controllerPort: number;
  dir: string;
  /** The password file the controller writes, and the pid file it signals. */
  passwordFile: string;
  pidFile: string;
  /** The controllers' password file (the compose entrypoint writes it in a deployment). */
  controllersFile: string;
  /** What the broker logged so far. */
  log(): string;
  stop(): Promise<void>;
}

/** The options a listener added by `extraConfig` needs to be a devices' or a controllers' one. */
export interface ListenerOptions {
  devices: string;
  controllers: string;
}

/**
 * A private Mosquitto on free loopback ports with deploy/mosquitto's config and ACL, a pid file,
 * a devices' password file (the controller under test writes it; empty unless `accounts.devices`)
 * and a controllers' one with `accounts.controllers` (username → password). `extraConfig` is
 * appended (further listeners, given the options each kind of listener has in deploy/mosquitto).
 */
export async function startManagedMosquitto(
  extraConfig: (dir: string, listener: ListenerOptions) => Promise<string> | string = () => '',
  accounts: {
    controllers?: Readonly<Record<string, string>>;
    devices?: Readonly<Record<string, string>>;
  } = {},
): Promise<ManagedMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-broker-access-'));
  const port = await freePort();
  const controllerPort = await freePort();
  const passwordFile = join(dir, 'passwd');
  const controllersFile = join(dir, 'controllers.passwd');
  const pidFile = join(dir, 'mosquitto.pid');
  await writeFile(passwordFile, passwordFileOf(accounts.devices), { mode: 0o600 });
  await writeFile(controllersFile, passwordFileOf(accounts.controllers), { mode: 0o600 });
  const config = (await readFile(join(DEPLOY, 'mosquitto.conf'), 'utf8'))
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^listener 1884$/m, `listener ${controllerPort} 127.0.0.1`)
    .replace('/mosquitto/data/controllers.passwd', controllersFile)
    .replace('/mosquitto/data/passwd', passwordFile)
    .replaceAll('/mosquitto/config/acl', join(DEPLOY, 'acl'))
    .replace(/^persistence true$/m, 'persistence false')
    .replace(/^persistence_location .*$/m, '');
  const acl = `acl_file ${join(DEPLOY, 'acl')}`;
  const extra = await extraConfig(dir, {
    devices: `allow_anonymous false\nuse_username_as_clientid true\npassword_file ${passwordFile}\n${acl}`,
    controllers: `allow_anonymous false\npassword_file ${controllersFile}\n${acl}`,
  });
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
    controllerUrl: `mqtt://127.0.0.1:${controllerPort}`,
    controllerPort,
    dir,
    passwordFile,
    pidFile,
    controllersFile,
    log: () => log,
    async stop() {
      broker.kill('SIGTERM');
      if (broker.exitCode === null) await new Promise((resolve) => broker.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function passwordFileOf(accounts: Readonly<Record<string, string>> = {}): string {
  return renderPasswordFile(
    Object.entries(accounts).map(([username, password]) => ({
      username,
      hash: mosquittoPasswordHash(password),
    })),
  );
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
