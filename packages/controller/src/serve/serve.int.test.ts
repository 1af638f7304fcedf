import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics, verifyManifest, type StateReport } from '@podfleet/shared';
import mqtt from 'mqtt';
import { ensureAdminToken } from '../auth/bootstrap.js';
import { startManagedMosquitto } from '../broker-access/testing.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { apiRoutes } from '../http/routes.js';
import { connectBroker } from '../mqtt/connect.js';
import { readServeConfig } from './config.js';
import { startController, type RunningController } from './serve.js';

const MOSQUITTO = process.env.PODFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const log = pino({ level: 'silent' });

/** A controller of its own on the shared broker: own client id and share group, short session. */
function isolated() {
  const id = `pf-test-${randomUUID().slice(0, 13)}`;
  return {
    PODFLEET_CONTROLLER_ID: `podfleet-controller-${id}`,
    PODFLEET_SHARE_GROUP: id,
    PODFLEET_MQTT_SESSION_EXPIRY: '5',
  };
}

function state(device: string, generation: number): StateReport {
  return {
    device,
    generation,
    reportedAt: new Date().toISOString(),
    agent: { version: '0.1.0' },
    host: { podman: '4.3.1', systemd: '252', arch: 'x86_64', unitStyle: 'service' },
    services: [],
  };
}

async function until(check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The same checks, on Postgres + Mosquitto and on the embedded default. */
async function roundTrip(controller: RunningController) {
  const device = `dev-${randomUUID().slice(0, 8)}`;
  const health = await fetch(`${controller.url}/healthz`);
  expect(health.status).toBe(200);
  await controller.db.prisma.device.create({ data: { id: device, labels: { site: 'lab' } } });
  controller.sync.changed('test: device added');
  await controller.sync.settled();

  const agent = await connectBroker(controller.mqttUrl, { clientId: device });
  try {
    const manifest = new Promise<unknown>((resolve) =>
      agent.client.on(
        'message',
        (topic, payload) =>
          topic === topics.desired(device) && resolve(JSON.parse(payload.toString())),
      ),
    );
    await agent.client.subscribeAsync(topics.desired(device), { qos: 1 });
    expect(verifyManifest(await manifest, [controller.publicKeyPem])).toMatchObject({
      ok: true,
      manifest: { generation: 1 },
    });
    await agent.client.publishAsync(topics.state(device), JSON.stringify(state(device, 1)), {
      qos: 1,
    });
    await until(
      async () =>
        (await controller.db.prisma.device.findUniqueOrThrow({ where: { id: device } }))
          .appliedGeneration === 1,
    );
  } finally {
    await agent.client.endAsync();
  }
}

describe('podfleet serve', () => {
  let scratch: ScratchDatabase;
  beforeAll(async () => {
    scratch = await createScratchDatabase();
  });
  afterAll(async () => {
    await scratch.drop();
  });

  /** A controller's configuration on the scratch database and the machine's Mosquitto. */
  const onPostgres = () =>
    readServeConfig({
      DATABASE_URL: scratch.url,
      MQTT_URL: MOSQUITTO,
      PORT: '0',
      PODFLEET_DATA: mkdtempSync(join(tmpdir(), 'pf-serve-')),
      ...isolated(),
    });

  it('runs on Postgres and Mosquitto: manifests out, state reports in', async () => {
    const controller = await startController(onPostgres(), [], log);
    try {
      await roundTrip(controller);
    } finally {
      await controller.close();
    }
  });

  it('keeps running when Postgres ends its connections (a restart, a failover)', async () => {
    const controller = await startController(onPostgres(), [], log);
    try {
      await roundTrip(controller);
      const admin = new pg.Client({ connectionString: scratch.url });
      await admin.connect();
      const { rowCount } = await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      await admin.end();
      expect(rowCount).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await roundTrip(controller);
    } finally {
      await controller.close();
    }
  });

  it('runs on the embedded default with nothing configured', async () => {
    const config = readServeConfig({
      PORT: '0',
      PODFLEET_MQTT_PORT: '0',
      PODFLEET_DATA: mkdtempSync(join(tmpdir(), 'pf-serve-')),
    });
    const controller = await startController(config, [], log);
    try {
      expect(controller.db.kind).toBe('embedded');
      await roundTrip(controller);
    } finally {
      await controller.close();
    }
  }, 120_000);

  it('keeps its manifest-signing key across a restart', async () => {
    const data = mkdtempSync(join(tmpdir(), 'pf-serve-'));
    const env = {
      DATABASE_URL: scratch.url,
      MQTT_URL: MOSQUITTO,
      PORT: '0',
      PODFLEET_DATA: data,
      ...isolated(),
    };
    const first = await startController(readServeConfig(env), [], log);
    const key = first.publicKeyPem;
    await first.close();
    const second = await startController(readServeConfig(env), [], log);
    try {
      expect(second.publicKeyPem).toBe(key);
    } finally {
      await second.close();
    }
  });

  it('refuses a bad environment naming each variable', () => {
    const bad = () => readServeConfig({ PORT: 'eighty', MQTT_URL: 'http://x', LOG_LEVEL: 'loud' });
    expect(bad).toThrow(/(^|; )PORT: /);
    expect(bad).toThrow(/(^|; )MQTT_URL: must start with mqtt:\/\//);
    expect(bad).toThrow(/(^|; )LOG_LEVEL: /);
  });

  it('says which port is taken when the embedded broker cannot listen', async () => {
    const config = readServeConfig({
      PORT: '0',
      PODFLEET_MQTT_PORT: '1883',
      PODFLEET_DATA: mkdtempSync(join(tmpdir(), 'pf-serve-')),
    });
    await expect(startController(config, [], log)).rejects.toThrow(
      'embedded broker: 127.0.0.1:1883 is in use',
    );
  }, 120_000);

  it('enrolls a device with its own broker account when the broker password file is configured', async () => {
    const login = { username: 'podfleet-controller', password: 'controller-secret' };
    // The controllers' listener knows the controller's account (the compose entrypoint writes
    // it); the controller writes the devices' file.
    const broker = await startManagedMosquitto(() => '', {
      controllers: { [login.username]: login.password },
    });
    try {
      const config = {
        ...onPostgres(),
        MQTT_URL: `mqtt://${login.username}:${login.password}@127.0.0.1:${broker.controllerPort}`,
        PODFLEET_BROKER_PASSWORD_FILE: broker.passwordFile,
        PODFLEET_BROKER_PID_FILE: broker.pidFile,
      };
      const controller = await startController(config, apiRoutes, log);
      try {
        const admin = await ensureAdminToken(controller.db.prisma);
        const call = (path: string, body: unknown, token?: string) =>
          fetch(`${controller.url}${path}`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(token ? { authorization: `Bearer ${token}` } : {}),
            },
            body: JSON.stringify(body),
          });
        const token = (await (
          await call('/v1/enrollment-tokens', { ttl: '1h' }, admin)
        ).json()) as {
          token: string;
        };
        const device = `serve-${randomUUID().slice(0, 8)}`;
        const enrolled = await call('/v1/enroll', { token: token.token, device });
        expect(enrolled.status).toBe(201);
        const { credentials } = (await enrolled.json()) as {
          credentials: { broker?: { username: string; password: string } };
        };
        expect(credentials.broker?.username).toBe(device);
        // The issued account works on the broker (the file was written and reloaded).
        const client = await mqtt.connectAsync(broker.url, {
          ...credentials.broker,
          protocolVersion: 5,
          reconnectPeriod: 0,
        });
        await client.endAsync();
      } finally {
        await controller.close();
      }
    } finally {
      await broker.stop();
    }
  });
});
