import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controllerSubscriptions, topics } from '@podfleet/shared';
import { connectBroker, type BrokerSession } from './connect.js';
import { startMosquitto, type MosquittoInstance } from './testing.js';

// deploy/mosquitto's ACL, enforced by a real Mosquitto: a device reaches its own topics only.
describe('the deployment broker ACL', () => {
  let broker: MosquittoInstance;
  const sessions: BrokerSession[] = [];
  const login = async (username: string, password = `${username}-secret`) => {
    const session = await connectBroker(broker.url, {
      username,
      password,
      clientId: `${username}-${randomUUID()}`,
      reconnectPeriod: 0,
    });
    sessions.push(session);
    return session;
  };
  const messages = (session: BrokerSession) => {
    const seen: string[] = [];
    session.client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    return seen;
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

  beforeAll(async () => {
    broker = await startMosquitto({
      'podfleet-controller': 'podfleet-controller-secret',
      'edge-a': 'edge-a-secret',
      'edge-b': 'edge-b-secret',
    });
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.client.endAsync(true)));
    await broker.stop();
  });

  it('refuses a client without the right password', async () => {
    await expect(login('edge-a', 'wrong')).rejects.toThrow(
      /Bad User Name or Password|Not authorized/,
    );
  });

  it('lets a device read its own desired manifest and not another device’s', async () => {
    const controller = await login('podfleet-controller');
    await controller.client.publishAsync(topics.desired('edge-a'), 'for-a', {
      qos: 1,
      retain: true,
    });
    await controller.client.publishAsync(topics.desired('edge-b'), 'for-b', {
      qos: 1,
      retain: true,
    });
    const a = await login('edge-a');
    const seen = messages(a);
    await a.client.subscribeAsync(topics.desired('edge-a'), { qos: 1 });
    // Mosquitto 2.0 grants any subscription and checks the ACL on every message it delivers.
    await a.client.subscribeAsync(topics.desired('edge-b'), { qos: 1 });
    await a.client.subscribeAsync('#', { qos: 1 });
    await settle();
    expect(seen).toContain('pf/v1/dev/edge-a/desired for-a');
    expect(seen.filter((message) => !message.startsWith('pf/v1/dev/edge-a/desired '))).toEqual([]);
  });

  it('delivers what a device publishes on its own topics to the controller, and drops what it publishes as another device', async () => {
    const controller = await login('podfleet-controller');
    const seen = messages(controller);
    await controller.client.subscribeAsync(controllerSubscriptions.state, { qos: 1 });
    const a = await login('edge-a');
    await a.client.publishAsync(topics.state('edge-a'), 'a-state', { qos: 1 });
    await a.client
      .publishAsync(topics.state('edge-b'), 'forged', { qos: 1 })
      .catch(() => undefined);
    await settle();
    expect(seen).toEqual(['pf/v1/dev/edge-a/state a-state']);
  });
});
