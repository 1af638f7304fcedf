import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '@podfleet/shared';
import { connectBroker } from './connect.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.js';

const MOSQUITTO = process.env.PODFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

describe('brokers', () => {
  let embedded: EmbeddedBroker;
  beforeAll(async () => {
    embedded = await startEmbeddedBroker();
  });
  afterAll(async () => {
    await embedded.close();
  });

  it('Mosquitto offers shared subscriptions; the embedded broker says it does not', async () => {
    const real = await connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` });
    const local = await connectBroker(embedded.url, { clientId: `pf-test-${randomUUID()}` });
    try {
      expect(real.sharedSubscriptions).toBe(true);
      expect(local.sharedSubscriptions).toBe(false);
    } finally {
      await Promise.all([real.client.endAsync(), local.client.endAsync()]);
    }
  });

  it('refuses to start against a broker that is not there, naming it', async () => {
    await expect(connectBroker('mqtt://127.0.0.1:1', { reconnectPeriod: 0 })).rejects.toThrow(
      /^cannot connect to mqtt:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/,
    );
  });

  it('two controllers on one shared subscription split the devices’ messages between them', async () => {
    // A share group and topic of this test's own: other clients of this broker stay out of it.
    const device = `dev-${randomUUID().slice(0, 8)}`;
    const controllers = await Promise.all(
      [0, 1].map(() => connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` })),
    );
    const received = [0, 0];
    controllers.forEach(({ client }, index) => client.on('message', () => void received[index]!++));
    await Promise.all(
      controllers.map(({ client }) =>
        client.subscribeAsync(`$share/test-${device}/${topics.state(device)}`, { qos: 1 }),
      ),
    );
    const sender = await connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` });
    try {
      for (let i = 0; i < 200; i++)
        await sender.client.publishAsync(topics.state(device), String(i), { qos: 1 });
      const deadline = Date.now() + 5000;
      while (received[0]! + received[1]! < 200 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(received[0]! + received[1]!).toBe(200);
      expect(received[0]).toBeGreaterThan(0);
      expect(received[1]).toBeGreaterThan(0);
    } finally {
      await Promise.all([sender, ...controllers].map(({ client }) => client.endAsync()));
    }
  });

  it('the embedded broker keeps a retained manifest for a device that subscribes later', async () => {
    const device = `dev-${randomUUID().slice(0, 8)}`;
    const controller = await connectBroker(embedded.url, { clientId: `pf-test-${randomUUID()}` });
    await controller.client.publishAsync(topics.desired(device), 'manifest', {
      qos: 1,
      retain: true,
    });
    const agent = await connectBroker(embedded.url, { clientId: device });
    try {
      const message = new Promise<string>((resolve) =>
        agent.client.once('message', (_t, payload) => resolve(payload.toString())),
      );
      await agent.client.subscribeAsync(topics.desired(device), { qos: 1 });
      expect(await message).toBe('manifest');
    } finally {
      await Promise.all([controller.client.endAsync(), agent.client.endAsync()]);
    }
  });
});
