import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  controllerSubscriptions,
  generateSigningKey,
  signManifest,
  topics,
  verifyManifest,
} from '@podfleet/shared';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';
import { controllerKeyIssuer } from '../keys/controller-key-issuer.js';
import { brokerCredentialIssuer } from './issuer.js';
import { MosquittoAccess, signalReload } from './mosquitto-access.js';
import { mosquittoPasswordMatches } from './mosquitto-password.js';
import { startManagedMosquitto, type ManagedMosquitto } from './testing.js';

interface Issued {
  username: string;
  password: string;
}

// Per-device accounts issued at enrollment, enforced by a real Mosquitto with deploy/mosquitto's
// config and ACL: a device reaches its own topics only, and a deleted device nothing at all.
describe('per-device broker accounts on Mosquitto', () => {
  let broker: ManagedMosquitto;
  let api: ApiHarness;
  const clients: MqttClient[] = [];
  const credentials = new Map<string, Issued>();
  const controllerLogin = { username: 'podfleet-controller', password: 'controller-secret' };
  const controllerKey = generateSigningKey();
  const trusted = new Map<string, string[]>();

  const connect = async (login: { username: string; password: string }) => {
    const client = await mqtt.connectAsync(broker.url, {
      ...login,
      protocolVersion: 5,
      clientId: `${login.username}-${randomUUID()}`,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    clients.push(client);
    return client;
  };
  const heard = (client: MqttClient) => {
    const seen: string[] = [];
    client.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`));
    return seen;
  };
  const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

  const enroll = async (device: string) => {
    const token = await api.call('admin', 'POST', '/v1/enrollment-tokens', { ttl: '1h' });
    return api.app.inject({
      method: 'POST',
      url: '/v1/enroll',
      payload: { token: token.json().token, device },
    });
  };

  beforeAll(async () => {
    broker = await startManagedMosquitto();
    const access = new MosquittoAccess({
      passwordFile: broker.passwordFile,
      reload: signalReload(broker.pidFile),
      accounts: [controllerLogin],
    });
    api = await openApiHarness({
      enroll: { issuers: [controllerKeyIssuer(controllerKey), brokerCredentialIssuer(access)] },
    });
    await access.sync(api.prisma);
    for (const device of ['edge-a', 'edge-b']) {
      const response = await enroll(device);
      expect(response.statusCode).toBe(201);
      credentials.set(device, response.json().credentials.broker);
      trusted.set(device, response.json().credentials.controller.publicKeys);
    }
    const controller = await connect(controllerLogin);
    for (const device of ['edge-a', 'edge-b']) {
      await controller.publishAsync(topics.desired(device), `manifest-for-${device}`, {
        qos: 1,
        retain: true,
      });
    }
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    await api?.close();
    await broker?.stop();
  });

  it('issues each device its own account, stored only as the broker’s hash', async () => {
    const a = credentials.get('edge-a')!;
    expect(a.username).toBe('edge-a');
    expect(a.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(credentials.get('edge-b')!.password).not.toBe(a.password);
    const row = await api.prisma.brokerCredential.findUniqueOrThrow({
      where: { deviceId: 'edge-a' },
    });
    expect(mosquittoPasswordMatches(a.password, row.passwordHash)).toBe(true);
    const file = await readFile(broker.passwordFile, 'utf8');
    expect(file).not.toContain(a.password);
    expect(file.split('\n').map((line) => line.split(':')[0])).toEqual([
      'edge-a',
      'edge-b',
      'podfleet-controller',
      '',
    ]);
  });

  it('gives each device the controller key its manifests are signed with', () => {
    const manifest = signManifest(
      { device: 'edge-a', generation: 1, issuedAt: new Date().toISOString(), services: [] },
      controllerKey.privateKeyPem,
    );
    expect(verifyManifest(manifest, trusted.get('edge-a')!).ok).toBe(true);
  });

  it('refuses a device with another device’s username or a wrong password', async () => {
    const { password } = credentials.get('edge-a')!;
    await expect(connect({ username: 'edge-b', password })).rejects.toThrow(
      /Bad User Name or Password|Not authorized/,
    );
    await expect(connect({ username: 'edge-a', password: 'guess' })).rejects.toThrow(
      /Bad User Name or Password|Not authorized/,
    );
  });

  it('lets device A read its own desired manifest, and not B’s, not even through #', async () => {
    const a = await connect(credentials.get('edge-a')!);
    const seen = heard(a);
    await a.subscribeAsync(topics.desired('edge-a'), { qos: 1 });
    // Mosquitto 2.0's acl_file grants any subscription and checks the ACL on every delivery.
    await a.subscribeAsync(topics.desired('edge-b'), { qos: 1 });
    await a.subscribeAsync('#', { qos: 1 });
    await a.subscribeAsync(controllerSubscriptions.state, { qos: 1 });
    const b = await connect(credentials.get('edge-b')!);
    await b.publishAsync(topics.state('edge-b'), 'b-state', { qos: 1 });
    await settle();
    // Its own retained manifest comes once per matching subscription (its topic, and #).
    expect(new Set(seen)).toEqual(new Set([`${topics.desired('edge-a')} manifest-for-edge-a`]));
  });

  it('delivers what A publishes on its own topics, and drops what it publishes as B or as the controller', async () => {
    const controller = await connect(controllerLogin);
    const seen = heard(controller);
    await controller.subscribeAsync('pf/v1/dev/#', { qos: 1 });
    await settle();
    seen.splice(0);
    const a = await connect(credentials.get('edge-a')!);
    for (const kind of ['state', 'events', 'online', 'cmdResult'] as const) {
      await a.publishAsync(topics[kind]('edge-a'), `a-${kind}`, { qos: 1 });
    }
    const forged = [
      topics.state('edge-b'),
      topics.events('edge-b'),
      topics.online('edge-b'),
      topics.cmdResult('edge-b'),
      topics.desired('edge-b'),
      topics.cmd('edge-b'),
      // A device may not write its own desired manifest or commands either.
      topics.desired('edge-a'),
      topics.cmd('edge-a'),
    ];
    for (const topic of forged) {
      await a.publishAsync(topic, 'forged', { qos: 1, retain: true }).catch(() => undefined);
    }
    await settle();
    expect(seen.sort()).toEqual(
      [
        `${topics.cmdResult('edge-a')} a-cmdResult`,
        `${topics.events('edge-a')} a-events`,
        `${topics.online('edge-a')} a-online`,
        `${topics.state('edge-a')} a-state`,
      ].sort(),
    );
  });

  it('refuses to enroll a device named like the controller’s account, which keeps working', async () => {
    // Refused before the issuer's own check (409 for other accounts): the controllers' prefix.
    const response = await enroll('podfleet-controller');
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toMatch(
      /^body\.device: must not start with podfleet-controller/,
    );
    expect(await api.prisma.device.count({ where: { id: 'podfleet-controller' } })).toBe(0);
    await expect(connect(controllerLogin)).resolves.toBeDefined();
  });

  it('deleting a device disconnects it and refuses it from then on; others stay', async () => {
    const a = await connect(credentials.get('edge-a')!);
    const b = await connect(credentials.get('edge-b')!);
    const closed = new Promise<void>((resolve) => a.once('close', () => resolve()));
    const deleted = await api.call('admin', 'DELETE', '/v1/devices/edge-a');
    expect(deleted.statusCode).toBe(204);
    await closed;
    expect(a.connected).toBe(false);
    await expect(connect(credentials.get('edge-a')!)).rejects.toThrow(
      /Bad User Name or Password|Not authorized/,
    );
    expect(await api.prisma.brokerCredential.count({ where: { deviceId: 'edge-a' } })).toBe(0);
    expect(b.connected).toBe(true);
    await b.publishAsync(topics.state('edge-b'), 'still here', { qos: 1 });
  });

  it('keeps the device when the broker cannot be told: deletion and revocation are one', async () => {
    const access = new MosquittoAccess({
      passwordFile: broker.passwordFile,
      reload: () => Promise.reject(new Error('broker unreachable')),
      accounts: [controllerLogin],
    });
    const broken = await openApiHarness({
      enroll: { issuers: [brokerCredentialIssuer(access)] },
    });
    try {
      await broken.prisma.device.create({ data: { id: 'edge-c' } });
      await broken.prisma.brokerCredential.create({
        data: { deviceId: 'edge-c', passwordHash: 'x' },
      });
      const response = await broken.call('admin', 'DELETE', '/v1/devices/edge-c');
      expect(response.statusCode).toBe(500);
      expect(await broken.prisma.device.count({ where: { id: 'edge-c' } })).toBe(1);
      expect(await broken.prisma.brokerCredential.count()).toBe(1);
    } finally {
      await broken.close();
      // This harness wrote the shared file from its own database: put the real one back.
      await new MosquittoAccess({
        passwordFile: broker.passwordFile,
        reload: signalReload(broker.pidFile),
        accounts: [controllerLogin],
      }).sync(api.prisma);
    }
  });
});
