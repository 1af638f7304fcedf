import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics, type DeviceEventInput } from '@podfleet/shared';
import { ensureAdminToken } from '../auth/bootstrap.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { apiRoutes } from '../http/routes.js';
import { controllerKeyIssuer } from '../keys/controller-key-issuer.js';
import { loadSigningKey } from '../keys/signing-key.js';
import { readServeConfig } from '../serve/config.js';
import { startController, type RunningController } from '../serve/serve.js';
import { brokerAccessFromEnv } from './config.js';
import { brokerCredentialIssuer } from './issuer.js';
import { startManagedMosquitto, type ManagedMosquitto } from './testing.js';

interface Login {
  username: string;
  password: string;
}

/** What one hostile input got: the broker's answer, and what it took from the controller. */
interface Outcome {
  input: string;
  got: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Issue 14, item 3, against a real Mosquitto configured as deploy/mosquitto and a real `serve`:
// enrolled devices trying to read other devices' messages or to take another client's place.
describe('a hostile device on the deployment broker', () => {
  let db: ScratchDatabase;
  let broker: ManagedMosquitto;
  let controller: RunningController;
  let dataDir: string;
  let admin: string;
  const controllerId = `podfleet-controller-hostile-${randomBytes(4).toString('hex')}`;
  const controllerLogin = { username: 'podfleet-controller', password: randomUUID() };
  const devices = new Map<string, Login>();
  const clients: MqttClient[] = [];
  const outcomes: Outcome[] = [];

  const call = (path: string, body: unknown, token?: string) =>
    fetch(`${controller.url}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
    });
  const enroll = async (device: string) => {
    const token = (await (await call('/v1/enrollment-tokens', { ttl: '1h' }, admin)).json()) as {
      token: string;
    };
    return call('/v1/enroll', { token: token.token, device });
  };
  const connect = async (url: string, login: Login, clientId: string) => {
    const client = await mqtt.connectAsync(url, {
      ...login,
      clientId,
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    clients.push(client);
    return client;
  };
  const event = (device: string, n: number): DeviceEventInput => ({
    id: randomUUID(),
    device,
    at: new Date().toISOString(),
    type: 'error',
    message: `event ${n}`,
  });
  /** Publishes 20 events as `victim` and waits for the controller to store them: how many it did. */
  const twentyEvents = async (victim: MqttClient, device: string, during?: Promise<unknown>) => {
    const sent = Array.from({ length: 20 }, (_, n) => event(device, n));
    for (const e of sent) {
      await victim.publishAsync(topics.events(device), JSON.stringify(e), { qos: 1 });
      await sleep(10);
    }
    await during;
    const ids = sent.map((e) => e.id);
    const deadline = Date.now() + 10_000;
    let stored = 0;
    while (Date.now() < deadline) {
      await controller.ingest.drain();
      stored = await controller.db.prisma.deviceEvent.count({ where: { id: { in: ids } } });
      if (stored === sent.length) break;
      await sleep(100);
    }
    return stored;
  };

  beforeAll(async () => {
    db = await createScratchDatabase();
    broker = await startManagedMosquitto(() => '', {
      controllers: { [controllerLogin.username]: controllerLogin.password },
    });
    dataDir = await mkdtemp(join(tmpdir(), 'pf-hostile-'));
    // The controller's session as an older release left it: in the former default share group.
    const resumed = await mqtt.connectAsync(broker.controllerUrl, {
      ...controllerLogin,
      clientId: controllerId,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 60 },
    });
    await resumed.subscribeAsync('$share/podfleet/pf/v1/dev/+/events', { qos: 1 });
    await resumed.endAsync();

    const env = {
      DATABASE_URL: db.url,
      MQTT_URL: `mqtt://${controllerLogin.username}:${controllerLogin.password}@127.0.0.1:${broker.controllerPort}`,
      PORT: '0',
      PODFLEET_DATA: dataDir,
      PODFLEET_CONTROLLER_ID: controllerId,
      PODFLEET_MQTT_SESSION_EXPIRY: '60',
      PODFLEET_RESOLVE_TAGS: 'off',
      PODFLEET_BROKER_PASSWORD_FILE: broker.passwordFile,
      PODFLEET_BROKER_PID_FILE: broker.pidFile,
    };
    const config = readServeConfig(env);
    const { key } = loadSigningKey(config, dataDir);
    const issuers = [controllerKeyIssuer(key), brokerCredentialIssuer(brokerAccessFromEnv(env)!)];
    controller = await startController(
      config,
      apiRoutes({ enroll: { issuers } }),
      pino({ level: 'silent' }),
    );
    admin = (await ensureAdminToken(controller.db.prisma))!;
    for (const device of ['edge-victim', 'edge-hostile-1', 'edge-hostile-2']) {
      const enrolled = await enroll(device);
      expect(enrolled.status).toBe(201);
      const body = (await enrolled.json()) as { credentials: { broker: Login } };
      devices.set(device, body.credentials.broker);
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.endAsync(true)));
    await controller?.close();
    await broker?.stop();
    await db?.drop();
    await rm(dataDir, { recursive: true, force: true });
    console.log(
      `hostile inputs: ${outcomes.length}\n${outcomes.map((o) => `  ${o.input}: ${o.got}`).join('\n')}`,
    );
  });

  it('cannot enroll or be registered under a controller’s client id (400 naming the field)', async () => {
    const attempts = [
      [
        'POST /v1/enroll device',
        () => enroll('podfleet-controller-1'),
        /^body\.device: must not start/,
      ],
      [
        'POST /v1/devices/:id/identity',
        () => call('/v1/devices/Podfleet-Controller-2/identity', {}, admin),
        /^params\.id: must not start/,
      ],
      [
        'POST /v1/devices id',
        () => call('/v1/devices', { id: 'podfleet-controller-3' }, admin),
        /^body\.id: must not start/,
      ],
    ] as const;
    for (const [input, attempt, message] of attempts) {
      const response = await attempt();
      const body = (await response.json()) as { message: string };
      outcomes.push({ input, got: `${response.status} ${body.message}` });
      expect(response.status).toBe(400);
      expect(body.message).toMatch(message);
    }
  });

  it('finds the controller gone from the former default share group (its session left it)', async () => {
    const victim = await connect(broker.url, devices.get('edge-victim')!, 'edge-victim');
    // Alone in `podfleet` now: a member left there by the controller would take half.
    const witness = await connect(broker.controllerUrl, controllerLogin, `${controllerId}-w`);
    const seen: string[] = [];
    witness.on('message', (topic) => seen.push(topic));
    await witness.subscribeAsync('$share/podfleet/pf/v1/dev/+/events', { qos: 1 });
    expect(await twentyEvents(victim, 'edge-victim')).toBe(20);
    await sleep(200);
    expect(seen).toHaveLength(20);
    await witness.endAsync();
  });

  it('takes no message of another device through any subscription, shared or not', async () => {
    const victim = await connect(broker.url, devices.get('edge-victim')!, 'edge-victim');
    const filters = [
      '$share/podfleet/pf/v1/dev/+/events',
      '$share/podfleet/pf/v1/dev/+/state',
      '$share/pf/pf/v1/dev/+/events',
      `$share/${controllerId}/pf/v1/dev/+/events`,
      '$share/podfleet/#',
      'pf/v1/dev/+/events',
      'pf/v1/dev/edge-victim/events',
      'pf/v1/dev/edge-victim/desired',
      '#',
      '$SYS/#',
    ];
    const taken: string[] = [];
    for (const device of ['edge-hostile-1', 'edge-hostile-2']) {
      const hostile = await connect(broker.url, devices.get(device)!, device);
      hostile.on('message', (topic) => {
        if (!topic.startsWith(`pf/v1/dev/${device}/`)) taken.push(`${device} ${topic}`);
      });
      for (const filter of filters) {
        const [granted] = await hostile.subscribeAsync(filter, { qos: 1 });
        outcomes.push({ input: `${device} SUBSCRIBE ${filter}`, got: `SUBACK ${granted!.qos}` });
      }
    }
    const stored = await twentyEvents(victim, 'edge-victim');
    await sleep(300);
    outcomes.push({
      input: `${filters.length * 2} subscriptions above, then 20 events of edge-victim`,
      got: `${stored} of 20 stored by the controller, ${taken.length} delivered to the hostile devices`,
    });
    expect(stored).toBe(20);
    expect(taken).toEqual([]);
  });

  it('cannot take another device’s session, nor the controller’s, even in a loop', async () => {
    const victim = await connect(broker.url, devices.get('edge-victim')!, 'edge-victim');
    let victimClosed = 0;
    victim.on('close', () => victimClosed++);
    const hostileLogin = devices.get('edge-hostile-1')!;

    const asVictim = await connect(broker.url, hostileLogin, 'edge-victim');
    await sleep(300);
    outcomes.push({
      input: 'edge-hostile-1 CONNECT client id edge-victim',
      got: `CONNACK 0 as edge-hostile-1; victim connections closed: ${victimClosed}`,
    });
    expect(victim.connected).toBe(true);
    await asVictim.endAsync();

    const refused = await mqtt
      .connectAsync(broker.controllerUrl, {
        ...hostileLogin,
        clientId: controllerId,
        protocolVersion: 5,
        reconnectPeriod: 0,
      })
      .then(
        (client) => (clients.push(client), 'accepted'),
        (error: Error) => error.message,
      );
    outcomes.push({
      input: 'edge-hostile-1 CONNECT on the controllers’ listener, client id of the controller',
      got: refused,
    });
    expect(refused).toMatch(/Not authorized/);

    // 30 connections with the controller's client id while the victim publishes its 20 events.
    let loops = 0;
    const loop = (async () => {
      for (; loops < 30; loops++) {
        const client = await mqtt.connectAsync(broker.url, {
          ...hostileLogin,
          clientId: controllerId,
          clean: true,
          protocolVersion: 5,
          reconnectPeriod: 0,
        });
        await client.endAsync(true);
      }
    })();
    const stored = await twentyEvents(victim, 'edge-victim', loop);
    const takenOver = broker.log().includes(`Client ${controllerId} already connected`);
    outcomes.push({
      input: `edge-hostile-1 CONNECT ${loops} times with client id ${controllerId}`,
      got: `${stored} of 20 events stored meanwhile; controller's session taken over: ${takenOver}; victim connections closed: ${victimClosed}`,
    });
    expect(stored).toBe(20);
    expect(takenOver).toBe(false);
    expect(victimClosed).toBe(0);
  });
});
