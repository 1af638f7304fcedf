import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '@podfleet/shared';
import { connectBroker, controllerSessionOptions } from './connect.js';
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

  it('the embedded broker keeps a device to its own topics and out of the controller’s client id', async () => {
    const device = `dev-${randomUUID().slice(0, 8)}`;
    const hostile = await connectBroker(embedded.url, { clientId: device, reconnectPeriod: 0 });
    const controller = await connectBroker(embedded.url, {
      ...embedded.controllerLogin,
      clientId: 'podfleet-controller-embedded',
      reconnectPeriod: 0,
    });
    try {
      const granted = async (filter: string) =>
        (await hostile.client.subscribeAsync(filter, { qos: 1 }))[0]!.qos;
      expect(await granted(topics.desired(device))).toBe(1);
      await expect(granted('$share/podfleet/pf/v1/dev/+/events')).rejects.toThrow(
        /Shared Subscriptions not supported/,
      );
      // SUBACK 0x87 (MQTT.js rejects a subscription the broker refused).
      for (const filter of ['pf/v1/dev/+/events', topics.desired('other'), '#']) {
        await expect(granted(filter)).rejects.toThrow(/Not authorized/);
      }
      await expect(
        hostile.client.publishAsync(topics.desired(device), 'forged', { qos: 1 }),
      ).rejects.toThrow(/Not authorized/);
      const [all] = await controller.client.subscribeAsync('pf/v1/dev/+/events', { qos: 1 });
      expect(all!.qos).toBe(1);
      await expect(
        connectBroker(embedded.url, {
          clientId: 'podfleet-controller-embedded',
          reconnectPeriod: 0,
        }),
      ).rejects.toThrow(/Not authorized|Bad User Name/);
      expect(controller.client.connected).toBe(true);
    } finally {
      await Promise.all([hostile.client.endAsync(), controller.client.endAsync()]);
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

  describe('Mosquitto and a shared subscription whose members are away (docs/decisions/004)', () => {
    /** A controller-like persistent session on `filter`, then gone, its session kept. */
    async function memberAway(clientId: string, filter: string): Promise<void> {
      const member = await connectBroker(MOSQUITTO, controllerSessionOptions(clientId, 60));
      await member.client.subscribeAsync(filter, { qos: 1 });
      member.client.end(true);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }

    /** The member back with its session: what it is handed before it subscribes to anything. */
    async function memberBack(clientId: string, all: (got: number) => boolean): Promise<string[]> {
      const received: string[] = [];
      const member = await connectBroker(
        MOSQUITTO,
        controllerSessionOptions(clientId, 0),
        (client) => client.on('message', (_t, payload) => received.push(payload.toString())),
      );
      const deadline = Date.now() + 5000;
      while (!all(received.length) && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 20));
      await new Promise((resolve) => setTimeout(resolve, 200)); // anything beyond `all`
      await member.client.endAsync();
      return received;
    }

    it('keeps their turns queued in their sessions and hands them over on return, before any SUBSCRIBE', async () => {
      const tag = randomUUID().slice(0, 8);
      const topic = topics.events(`dev-${tag}`);
      const filter = `$share/test-${tag}/${topic}`;
      const [a, b] = [`pf-test-a-${tag}`, `pf-test-b-${tag}`];
      await memberAway(a, filter);
      await memberAway(b, filter);
      const sender = await connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` });
      const sent = Array.from({ length: 20 }, (_, i) => `event-${i}`);
      for (const payload of sent) await sender.client.publishAsync(topic, payload, { qos: 1 });
      await sender.client.endAsync();
      const toA = await memberBack(a, (got) => got > 0);
      const toB = await memberBack(b, (got) => toA.length + got >= sent.length);
      // Round robin over the members, online or not: nothing lost, nothing twice.
      expect([...toA, ...toB].sort()).toEqual([...sent].sort());
      expect(toA.length).toBeGreaterThan(0);
      expect(toB.length).toBeGreaterThan(0);
    });

    it('gives a member that is away its turns even while another member is connected', async () => {
      const tag = randomUUID().slice(0, 8);
      const topic = topics.events(`dev-${tag}`);
      const filter = `$share/test-${tag}/${topic}`;
      const away = `pf-test-away-${tag}`;
      await memberAway(away, filter);
      const online = await connectBroker(MOSQUITTO, { clientId: `pf-test-on-${tag}` });
      const toOnline: string[] = [];
      online.client.on('message', (_t, payload) => toOnline.push(payload.toString()));
      await online.client.subscribeAsync(filter, { qos: 1 });
      const sender = await connectBroker(MOSQUITTO, { clientId: `pf-test-${randomUUID()}` });
      const sent = Array.from({ length: 20 }, (_, i) => `event-${i}`);
      for (const payload of sent) await sender.client.publishAsync(topic, payload, { qos: 1 });
      await sender.client.endAsync();
      const toAway = await memberBack(away, (got) => toOnline.length + got >= sent.length);
      await online.client.endAsync();
      expect(toAway.length).toBeGreaterThan(0);
      expect([...toOnline, ...toAway].sort()).toEqual([...sent].sort());
    });
  });

  it('the embedded broker keeps a retained manifest for a device that subscribes later', async () => {
    const device = `dev-${randomUUID().slice(0, 8)}`;
    const controller = await connectBroker(embedded.url, {
      ...embedded.controllerLogin,
      clientId: `podfleet-controller-${randomUUID()}`,
    });
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
