import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { Aedes, type Client } from 'aedes';
import {
  deviceMayConnect,
  deviceMayPublish,
  deviceMaySubscribe,
  EMBEDDED_CONTROLLER_USER,
} from './embedded-access.js';

export interface EmbeddedBroker {
  /** mqtt://127.0.0.1:PORT */
  url: string;
  /** What the controller logs in with: the one account that reaches every device's topics. */
  controllerLogin: { username: string; password: string };
  close(): Promise<void>;
}

/**
 * An in-process MQTT 5 broker (aedes) for the embedded default, when no MQTT_URL is configured.
 * It has no shared subscriptions (it says so in CONNACK), which is fine for the one controller
 * process it serves. Retained manifests live in memory: the controller republishes on start.
 *
 * Devices connect without accounts: a demo, not a trust boundary (docs/security.md). It still
 * keeps each client to its own device's topics by client id (embedded-access.ts), refuses
 * `$share/…` and wildcards, and keeps everyone but the controller (a password made per process)
 * out of the controllers' client ids.
 */
export async function startEmbeddedBroker(
  options: { host?: string; port?: number } = {},
): Promise<EmbeddedBroker> {
  const controllerLogin = {
    username: EMBEDDED_CONTROLLER_USER,
    password: randomBytes(24).toString('base64url'),
  };
  const controllers = new WeakSet<Client>();
  const broker = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      if (username === controllerLogin.username) {
        const ok = password !== undefined && same(password, controllerLogin.password);
        if (ok) controllers.add(client);
        return done(null, ok);
      }
      done(null, deviceMayConnect(client.id));
    },
    authorizeSubscribe(client, subscription, done) {
      const allowed = controllers.has(client) || deviceMaySubscribe(client.id, subscription.topic);
      done(null, allowed ? subscription : null);
    },
    authorizePublish(client, packet, done) {
      const allowed =
        !client || controllers.has(client) || deviceMayPublish(client.id, packet.topic);
      done(allowed ? null : new Error(`${packet.topic}: not this client's topic`));
    },
  });
  const server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  }).catch(async (error: unknown) => {
    // aedes runs its heartbeat on an interval from creation: left open, it keeps the process up.
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw error;
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `mqtt://${address}:${port}`,
    controllerLogin,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function same(given: Buffer, expected: string): boolean {
  const want = Buffer.from(expected);
  return given.length === want.length && timingSafeEqual(given, want);
}
