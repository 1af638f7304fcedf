import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DEPLOY = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));

export interface MosquittoInstance {
  url: string;
  stop(): Promise<void>;
}

/**
 * A private Mosquitto on a free loopback port, configured with deploy/mosquitto's config and ACL
 * and a password file holding `users` — the deployment's broker rules, run for real in a test.
 */
export async function startMosquitto(users: Record<string, string>): Promise<MosquittoInstance> {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-mosquitto-'));
  const port = await freePort();
  const passwd = join(dir, 'passwd');
  await writeFile(passwd, '', { mode: 0o600 });
  for (const [user, password] of Object.entries(users)) {
    const result = spawnSync('mosquitto_passwd', ['-b', passwd, user, password], {
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`mosquitto_passwd: ${result.stderr.trim()}`);
  }
  const config = (await readFile(join(DEPLOY, 'mosquitto.conf'), 'utf8'))
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace('/mosquitto/data/passwd', passwd)
    .replace('/mosquitto/config/acl', join(DEPLOY, 'acl'))
    .replace(/^persistence true$/m, 'persistence false')
    .replace(/^persistence_location .*$/m, '');
  // Root would otherwise drop to the mosquitto user, which cannot read the temporary directory.
  await writeFile(join(dir, 'mosquitto.conf'), `${config}\nuser root\n`);
  const broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  broker.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  await waitForPort(port, broker, () => log);
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      broker.kill('SIGTERM');
      await new Promise((resolve) =>
        broker.exitCode === null ? broker.once('exit', resolve) : resolve(null),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitForPort(port: number, broker: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (broker.exitCode !== null) throw new Error(`mosquitto exited: ${log().trim()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createServer().listen(port, '127.0.0.1');
      socket.once('listening', () => socket.close(() => resolve(false)));
      socket.once('error', () => resolve(true));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`mosquitto did not listen on ${port}: ${log().trim()}`);
}
