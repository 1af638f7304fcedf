import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
  createConnection,
  createServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '@podfleet/shared';

/** The Mosquitto the integration tests talk to (anonymous access allowed). */
export const TEST_BROKER = process.env.PODFLEET_TEST_BROKER ?? 'mqtt://127.0.0.1:1883';

/** A device id no other test run uses, so that retained messages never leak between runs. */
export function uniqueDeviceId(prefix = 'it'): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export interface SeenMessage {
  topic: string;
  payload: string;
  retain: boolean;
}

/** A controller-like client: subscribes, records what it sees, publishes, waits for messages. */
export class BrokerWatch {
  readonly seen: SeenMessage[] = [];
  private waiters: Array<() => void> = [];

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      this.seen.push({ topic, payload: payload.toString(), retain: packet.retain });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  static async open(
    filters: string[],
    url = TEST_BROKER,
    credentials: { username?: string; password?: string } = {},
  ): Promise<BrokerWatch> {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      clientId: uniqueDeviceId('watch'),
      reconnectPeriod: 0,
      ...credentials,
    });
    const watch = new BrokerWatch(client);
    if (filters.length > 0) await client.subscribeAsync(filters, { qos: 1 });
    return watch;
  }

  /** Messages on a topic, payloads parsed as JSON (empty ones, which clear, left out). */
  json<T = unknown>(topic: string): T[] {
    return this.seen
      .filter((m) => m.topic === topic && m.payload !== '')
      .map((m) => JSON.parse(m.payload) as T);
  }

  /** Resolves once `check` returns something other than undefined; rejects after `ms`. */
  async until<T>(what: string, check: () => T | undefined, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = check();
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async publish(topic: string, payload: string, retain = false): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, retain });
  }

  /** Clears what a test device left retained on the broker. */
  async clearDevices(devices: string[]): Promise<void> {
    for (const device of devices) {
      for (const topic of [topics.desired(device), topics.state(device), topics.online(device)]) {
        await this.publish(topic, '', true);
      }
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/**
 * A TCP relay in front of the broker that a test can cut (every connection dropped, new ones
 * refused) and restore: a network outage between one device and the broker.
 */
export class TcpCut {
  private readonly sockets = new Set<Socket>();
  private open = true;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target = TEST_BROKER): Promise<TcpCut> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const relay = new TcpCut(server, `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const { hostname, port } = new URL(target);
    server.on('connection', (client) => relay.relay(client, hostname, Number(port || 1883)));
    return relay;
  }

  private relay(client: Socket, host: string, port: number): void {
    if (!this.open) return void client.destroy();
    const upstream = createConnection({ host, port });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  }

  cut(): void {
    this.open = false;
    for (const socket of this.sockets) socket.destroy();
  }

  restore(): void {
    this.open = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const DEPLOY = fileURLToPath(new URL('../../../../deploy/mosquitto/', import.meta.url));

export interface PrivateBroker {
  url: string;
  stop(): Promise<void>;
}

/**
 * A Mosquitto of its own on free loopback ports, with deploy/mosquitto's config, ACL and password
 * files for `users`: the deployment's broker rules, for real. `url` is the devices' listener.
 */
export async function startDeploymentBroker(users: Record<string, string>): Promise<PrivateBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-agent-broker-'));
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const probe2 = createServer();
  await new Promise<void>((resolve) => probe2.listen(0, '127.0.0.1', resolve));
  const controllerPort = (probe2.address() as AddressInfo).port;
  await new Promise((resolve) => probe2.close(resolve));
  // Every account on the devices' listener (the controller writes its own into that file too);
  // the controllers' listener has the podfleet-controller… accounts only.
  const passwd = join(dir, 'passwd');
  const controllersPasswd = join(dir, 'controllers.passwd');
  for (const file of [passwd, controllersPasswd]) await writeFile(file, '', { mode: 0o600 });
  for (const [user, password] of Object.entries(users)) {
    const files = user.startsWith('podfleet-controller') ? [passwd, controllersPasswd] : [passwd];
    for (const file of files) {
      const made = spawnSync('mosquitto_passwd', ['-b', file, user, password], {
        encoding: 'utf8',
      });
      if (made.status !== 0) throw new Error(`mosquitto_passwd: ${made.stderr.trim()}`);
    }
  }
  const config = (await readFile(join(DEPLOY, 'mosquitto.conf'), 'utf8'))
    .replace(/^listener 1883$/m, `listener ${port} 127.0.0.1`)
    .replace(/^listener 1884$/m, `listener ${controllerPort} 127.0.0.1`)
    .replace('/mosquitto/data/controllers.passwd', controllersPasswd)
    .replace('/mosquitto/data/passwd', passwd)
    .replaceAll('/mosquitto/config/acl', join(DEPLOY, 'acl'))
    .replace(/^persistence true$/m, 'persistence false')
    .replace(/^persistence_location .*$/m, '');
  // Running as root, Mosquitto would drop to its own user, which cannot read this directory.
  await writeFile(join(dir, 'mosquitto.conf'), `${config}\nuser root\n`);
  const broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  broker.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const deadline = Date.now() + 5000;
  while (!(await accepts(port))) {
    if (broker.exitCode !== null || Date.now() > deadline) {
      broker.kill();
      throw new Error(`mosquitto did not start: ${log.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    url: `mqtt://127.0.0.1:${port}`,
    async stop() {
      if (broker.exitCode === null) {
        broker.kill('SIGTERM');
        await new Promise((resolve) => broker.once('exit', resolve));
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
