import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  /** mqtt://127.0.0.1:PORT */
  url: string;
  close(): Promise<void>;
}

/**
 * An in-process MQTT 5 broker (aedes) for the embedded default, when no MQTT_URL is configured.
 * It has no shared subscriptions (it says so in CONNACK), which is fine for the one controller
 * process it serves. Retained manifests live in memory: the controller republishes on start.
 */
export async function startEmbeddedBroker(
  options: { host?: string; port?: number } = {},
): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `mqtt://${address}:${port}`,
    async close() {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
