import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics, type DeviceEventInput } from '@podfleet/shared';
import { allRoutes } from '../http/routes.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { connectBroker } from '../mqtt/connect.js';
import { startMosquitto, type MosquittoInstance } from '../mqtt/testing.js';
import { readServeConfig } from './config.js';
import { startController } from './serve.js';

const log = pino({ level: process.env.PODFLEET_TEST_LOG ?? 'silent' });

function event(device: string, n: number): DeviceEventInput {
  return {
    id: randomUUID(),
    device,
    at: new Date().toISOString(),
    type: 'error',
    message: `disk full ${n}`,
  };
}

/**
 * docs/decisions/004: Mosquitto keeps a shared subscription's messages in the controller's
 * persistent session while it is away and hands them over right after CONNACK, before any
 * SUBSCRIBE of the new connection. The controller must be listening by then.
 */
describe('device events published while the controller is away', () => {
  let db: ScratchDatabase;
  let pool: pg.Pool;
  let broker: MosquittoInstance;
  const device = `away-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    db = await createScratchDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    broker = await startMosquitto({ 'podfleet-controller': 'ctl-secret', [device]: 'dev-secret' });
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
    await broker.stop();
  });

  it('are all stored once the controller is back, each once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pf-away-'));
    const config = readServeConfig({
      DATABASE_URL: db.url,
      MQTT_URL: broker.controllerUrl.replace('mqtt://', 'mqtt://podfleet-controller:ctl-secret@'),
      PORT: '0',
      PODFLEET_DATA: dataDir,
      PODFLEET_CONTROLLER_ID: `podfleet-controller-away-${randomUUID().slice(0, 8)}`,
      PODFLEET_MQTT_SESSION_EXPIRY: '60',
    });
    const first = await startController(config, allRoutes, log);
    await first.db.prisma.device.create({ data: { id: device } });
    await first.close();

    const agent = await connectBroker(broker.url, {
      clientId: device,
      username: device,
      password: 'dev-secret',
    });
    const sent = Array.from({ length: 500 }, (_, n) => event(device, n));
    try {
      // Each publish resolves on the broker's PUBACK: from here on the broker answers for them.
      await Promise.all(
        sent.map((e) =>
          agent.client.publishAsync(topics.events(device), JSON.stringify(e), { qos: 1 }),
        ),
      );
    } finally {
      await agent.client.endAsync();
    }

    const second = await startController(config, allRoutes, log);
    try {
      await second.ingest.drain();
      const deadline = Date.now() + 20_000;
      while (second.ingest.stats.stored.events < sent.length && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await second.ingest.drain();
      const stored = await pool.query<{ id: string }>(
        'SELECT id FROM device_events WHERE device_id = $1',
        [device],
      );
      expect(stored.rows.length).toBe(sent.length);
      expect(new Set(stored.rows.map((r) => r.id))).toEqual(new Set(sent.map((e) => e.id)));
    } finally {
      await second.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
