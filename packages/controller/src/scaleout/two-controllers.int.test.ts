import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSigningKey, topics, type DeviceEventInput } from '@podfleet/shared';
import { SimFleet } from '../../../agent/src/sim/sim-fleet.js';
import { openDatabase } from '../db/client.js';
import { createScratchDatabase } from '../db/testing.js';
import {
  Cleanups,
  MOSQUITTO,
  clearRetained,
  happenings,
  mustRun,
  provisionFleet,
  simIds,
  spawnController,
  uniquePrefix,
  waitFor,
  waitUntilAllRun,
  type ControllerSite,
} from '../rollouts/e2e/harness.js';
import type { RolloutStatus } from '../rollouts/status.js';

const V1 = 'registry.example/acme/web:1.0';
const V2 = 'registry.example/acme/web:2.0';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** What one controller's log says it stored (ingest logs each batch at debug level). */
function storedEvents(lines: readonly string[]): number {
  let events = 0;
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { msg?: string; events?: number };
    if (entry.msg === 'device messages stored') events += entry.events ?? 0;
  }
  return events;
}

function event(device: string): DeviceEventInput {
  return {
    id: randomUUID(),
    device,
    at: new Date().toISOString(),
    type: 'error',
    message: 'scale-out',
  };
}

/**
 * Two `podfleet serve` processes of one fleet: one Postgres database, one Mosquitto, one share
 * group and one signing key; each with its own client id and data directory.
 */
describe('two controllers on one database and one broker', () => {
  it('split device events between them, store each once, and the survivor finishes a rollout when the other is killed', async () => {
    const scratch = await createScratchDatabase();
    cleanups.add(() => scratch.drop());
    const db = await openDatabase({ DATABASE_URL: scratch.url });
    cleanups.add(() => db.close());
    const key = generateSigningKey();
    const group = `pf-scale-${randomBytes(4).toString('hex')}`;
    const site = async (name: string): Promise<ControllerSite> => {
      const dataDir = await mkdtemp(join(tmpdir(), `pf-scale-${name}-`));
      cleanups.add(() => rm(dataDir, { recursive: true, force: true }));
      const broker = {
        PODFLEET_CONTROLLER_ID: `podfleet-controller-${group}-${name}`,
        PODFLEET_SHARE_GROUP: group,
        PODFLEET_MQTT_SESSION_EXPIRY: '300',
      };
      const env = {
        DATABASE_URL: scratch.url,
        MQTT_URL: MOSQUITTO,
        PORT: '0',
        PODFLEET_DATA: dataDir,
        PODFLEET_SIGNING_KEY: key.privateKeyPem,
        PODFLEET_RESOLVE_TAGS: 'off', // the simulated fleet's images are in no registry
        LOG_LEVEL: 'debug',
        ...broker,
      };
      return { scratch, dataDir, broker, env };
    };
    const siteA = await site('a');
    const siteB = await site('b');
    cleanups.add(async () => {
      // Once both are gone (cleanups run newest first): end their broker sessions.
      for (const id of [siteA.broker, siteB.broker].map((s) => s.PODFLEET_CONTROLLER_ID)) {
        const gone = await mqtt.connectAsync(MOSQUITTO, {
          protocolVersion: 5,
          clientId: id,
          clean: true,
          reconnectPeriod: 0,
        });
        await gone.endAsync();
      }
    });

    const a = await spawnController(siteA, cleanups);
    // The admin token is made once per database, by the first controller.
    await copyFile(join(siteA.dataDir, 'admin-token'), join(siteB.dataDir, 'admin-token'));
    const b = await spawnController(siteB, cleanups);
    const prefix = uniquePrefix('scale');
    const ids = simIds(prefix, 40);
    cleanups.add(() => clearRetained(ids));
    await provisionFleet(a, { ids, label: prefix, image: V1 }, siteA.dataDir);

    // 1. A burst of events: split between the two, every one stored, none twice.
    const sent = Array.from({ length: 2000 }, (_, i) => event(ids[i % ids.length]!));
    const publisher = await mqtt.connectAsync(MOSQUITTO, {
      protocolVersion: 5,
      clientId: `pf-scale-pub-${randomBytes(4).toString('hex')}`,
    });
    try {
      await Promise.all(
        sent.map((e) =>
          publisher.publishAsync(topics.events(e.device), JSON.stringify(e), { qos: 1 }),
        ),
      );
    } finally {
      await publisher.endAsync();
    }
    const stored = await waitFor(
      'the burst in Postgres',
      30_000,
      async () => {
        const rows = await db.prisma.deviceEvent.findMany({
          where: { deviceId: { in: ids }, type: 'error' },
          select: { id: true },
        });
        return rows.length >= sent.length ? rows : undefined;
      },
      undefined,
      100,
    );
    expect(stored.length).toBe(sent.length);
    expect(new Set(stored.map((row) => row.id))).toEqual(new Set(sent.map((e) => e.id)));
    // Stored counts only rows that were new: together they are the burst, each side had a share.
    const byA = await waitFor('the last batch logs', 5000, async () => {
      const n = storedEvents(a.lines);
      return n + storedEvents(b.lines) === sent.length ? n : undefined;
    });
    const byB = storedEvents(b.lines);
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);

    // 2. A rollout started at A; A is killed in the middle of it; B finishes it.
    const fleet = new SimFleet({
      devices: ids.length,
      broker: MOSQUITTO,
      prefix,
      labels: {},
      failRate: 0,
      offlineRate: 0,
      trustedKeys: [key.publicKeyPem],
      settle: 1,
      logger: pino({ level: 'silent' }),
    });
    cleanups.add(() => fleet.stop());
    await fleet.start();
    await waitUntilAllRun(db.prisma, ids, V1, 60_000);
    const started = await mustRun(
      a.cli('rollout', 'start', 'web', V2, '--group', 'edge', '--batch-size', '25%', '--health-timeout', '60s', '--json'), // prettier-ignore
      'rollout start',
    );
    const { id } = JSON.parse(started.stdout) as RolloutStatus;
    await waitFor(
      'batch 1 to be in progress',
      60_000,
      async () => {
        const row = await db.prisma.rollout.findUniqueOrThrow({ where: { id } });
        // The start is logged after its commit: killed between the two, the line would be lost.
        const logged = [...happenings(a.lines), ...happenings(b.lines)].includes(
          'batch 1 started: 10 devices',
        );
        return row.currentBatch === 1 && row.batchStartedAt && logged ? true : undefined;
      },
      undefined,
      20,
    );
    await a.kill();
    const linesOfA = [...a.lines];

    const done = await waitFor(
      'the rollout to finish',
      90_000,
      async () => {
        const row = await db.prisma.rollout.findUniqueOrThrow({ where: { id } });
        return ['succeeded', 'failed', 'aborted', 'rolled_back'].includes(row.state)
          ? row
          : undefined;
      },
      undefined,
      200,
    );
    expect(done.state, done.reason ?? '').toBe('succeeded');
    await waitUntilAllRun(db.prisma, ids, V2, 10_000);
    // Each batch started once; the last ones by B, since A was gone.
    const starts = [...happenings(linesOfA), ...happenings(b.lines)].filter((l) =>
      l.includes(' started: '),
    );
    expect(starts.sort()).toEqual([0, 1, 2, 3].map((n) => `batch ${n} started: 10 devices`));
    expect(happenings(b.lines)).toContain('batch 3 started: 10 devices');
    // B emptied the broker session A left, so that A's turns stopped waiting there.
    const takeOver = b.lines.find((line) => line.includes('took over the broker session'));
    expect(takeOver && JSON.parse(takeOver)).toMatchObject({
      peer: siteA.broker.PODFLEET_CONTROLLER_ID,
    });

    // 3. A comes back (its restart policy) and stores what it had journaled but not written.
    const again = await spawnController(siteA, cleanups);
    const applies = await waitFor(
      'every device’s apply event for V2',
      20_000,
      async () => {
        const rows = await db.prisma.deviceEvent.findMany({
          where: { deviceId: { in: ids }, type: 'apply' },
          select: { deviceId: true, payload: true },
        });
        const applied = new Set(
          rows
            .filter(({ payload }) => {
              const e = payload as { result: string; services: { image: string }[] };
              return e.result === 'applied' && e.services.some((s) => s.image === V2);
            })
            .map((row) => row.deviceId),
        );
        return applied.size === ids.length ? applied : undefined;
      },
      undefined,
      200,
    );
    expect(applies.size).toBe(ids.length);
    await again.kill();
  });
});
