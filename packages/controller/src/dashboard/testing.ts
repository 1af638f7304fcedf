import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import {
  ServiceSpec,
  generateSigningKey,
  type DeviceEvent,
  type DeviceManifest,
  type StateReport,
} from '@podfleet/shared';
import { hashToken } from '../auth/tokens.js';
import { openDatabase, type Database } from '../db/client.js';
import { pgSession } from '../db/session.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { DesiredSync } from '../desired/sync.js';
import { buildApp } from '../http/app.js';
import { apiRoutes } from '../http/routes.js';
import { storeBatch, type IngestBatch } from '../ingest/store.js';
import { RolloutEngine } from '../rollouts/engine.js';
import { loadRolloutOverrides } from '../rollouts/overrides.js';
import { rolloutRoutes } from '../rollouts/routes.js';
import { dashboardPage } from './plugin.js';

export const VIEWER_TOKEN = 'pft_dashboard_viewer';
export const OPERATOR_TOKEN = 'pft_dashboard_operator';
export const WEB_V1 = 'registry.example/acme/web:1.4';
export const WEB_V2 = 'registry.example/acme/web:1.5';
export const LAB_PIN = `registry.example/acme/web@sha256:${'a'.repeat(64)}`;
export const DEVICE_PIN = `registry.example/acme/web@sha256:${'b'.repeat(64)}`;

type Host = StateReport['host'];
const CURRENT: Host = { podman: '5.4.2', systemd: '257', arch: 'x86_64', unitStyle: 'quadlet' };
const OLDER: Host = { podman: '4.9.3', systemd: '255', arch: 'x86_64', unitStyle: 'quadlet' };
const OLDEST: Host = { podman: '4.3.1', systemd: '252', arch: 'aarch64', unitStyle: 'service' };

/** berlin-01…08 in group edge, paris-01…02 in the pinned group lab. */
export const FLEET: readonly { id: string; site: string; host: Host }[] = [
  ...Array.from({ length: 8 }, (_, i) => ({
    id: `berlin-0${i + 1}`,
    site: 'berlin',
    host: i < 4 ? CURRENT : OLDER,
  })),
  { id: 'paris-01', site: 'paris', host: OLDEST },
  { id: 'paris-02', site: 'paris', host: OLDEST },
];

/** A controller as `podfleet serve` assembles it, on a scratch database, with no broker. */
export interface DashboardController {
  url: string;
  db: Database;
  engine: RolloutEngine;
  sync: DesiredSync;
  /** The last manifest published to each device: what its simulated agent applies. */
  published: Map<string, DeviceManifest>;
  /** Resolves once every device of `ids` has been sent a manifest running `image` for web. */
  sent(ids: readonly string[], image: string): Promise<void>;
  /** Devices apply their last manifest and report through the real ingest store. */
  converge(ids: readonly string[], failures?: ReadonlyMap<string, string>): Promise<void>;
  /** Stores device messages as ingest would. */
  ingest(batch: Partial<IngestBatch>): Promise<void>;
  close(): Promise<void>;
}

export async function startDashboardController(): Promise<DashboardController> {
  const log = pino({ level: process.env.PODFLEET_TEST_LOG ?? 'silent' });
  const scratch: ScratchDatabase = await createScratchDatabase();
  const db = await openDatabase({ DATABASE_URL: scratch.url });
  await db.migrate();
  const pool = new pg.Pool({ connectionString: scratch.url, max: 2 });
  const published = new Map<string, DeviceManifest>();
  const sync = new DesiredSync({
    db,
    publisher: {
      publish: async (manifest) => void published.set(manifest.device, manifest),
      clear: async (device) => void published.delete(device),
    },
    key: generateSigningKey(),
    log,
    rollouts: loadRolloutOverrides,
  });
  // Runs on its own as in `podfleet serve`, so the test only plays the devices' part.
  const engine = new RolloutEngine({ db, sync, log, tickMs: 200 });
  const tokens = new Map([
    [hashToken(VIEWER_TOKEN), { name: 'wall-screen', role: 'viewer' as const }],
    [hashToken(OPERATOR_TOKEN), { name: 'ops', role: 'operator' as const }],
  ]);
  const app: FastifyInstance = await buildApp(
    { db, fleet: sync, log, tokens: async (hash) => tokens.get(hash) },
    [...apiRoutes(), rolloutRoutes(engine)],
    [dashboardPage],
  );
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  engine.run();

  const ingest = async (batch: Partial<IngestBatch>) => {
    const client = await pool.connect();
    try {
      await storeBatch(pgSession(client), { states: [], events: [], online: [], ...batch });
    } finally {
      client.release();
    }
  };
  const device = new SimulatedDevices(published);
  return {
    url,
    db,
    engine,
    sync,
    published,
    ingest,
    sent: (ids, image) =>
      waitUntil(`${ids.join(', ')} sent ${image}`, () =>
        ids.every((id) => webImage(published.get(id)) === image),
      ),
    converge: (ids, failures) => ingest(device.apply(ids, failures)),
    close: async () => {
      await engine.close();
      await app.close();
      await sync.close();
      await pool.end();
      await db.close();
      await scratch.drop();
    },
  };
}

/** Polls `check` every 50 ms for up to 10 s. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function webImage(manifest: DeviceManifest | undefined): string | undefined {
  return manifest?.services.find((service) => service.name === 'web')?.image;
}

/**
 * What agents would do with their manifests: run the image, or, for a device in `failures`, find
 * the new image never ready and roll back to the previous one, reporting why.
 */
class SimulatedDevices {
  private readonly running = new Map<string, string>();
  private readonly applied = new Map<string, number>();
  private reportedAt = Date.now();

  constructor(private readonly published: ReadonlyMap<string, DeviceManifest>) {}

  apply(ids: readonly string[], failures: ReadonlyMap<string, string> = new Map()): IngestBatch {
    const batch: IngestBatch = { states: [], events: [], online: [] };
    for (const id of ids) {
      const manifest = this.published.get(id);
      if (!manifest || manifest.generation <= (this.applied.get(id) ?? 0)) continue;
      const wanted = webImage(manifest);
      const previous = this.running.get(id);
      const reason = failures.get(id);
      const image = reason !== undefined && previous !== undefined ? previous : wanted;
      if (reason !== undefined && wanted !== undefined && previous !== undefined) {
        batch.events.push({
          event: this.rollback(id, manifest.generation, wanted, previous, reason),
          receivedAt: new Date(),
        });
      }
      if (image !== undefined) this.running.set(id, image);
      this.applied.set(id, manifest.generation);
      // Reports must be received after the stored one to be taken: a clock that only moves forward.
      this.reportedAt = Math.max(this.reportedAt + 1, Date.now());
      batch.states.push({
        receivedAt: new Date(this.reportedAt),
        report: {
          device: id,
          generation: manifest.generation,
          reportedAt: new Date(this.reportedAt).toISOString(),
          agent: { version: '0.1.0' },
          host: FLEET.find((d) => d.id === id)?.host ?? CURRENT,
          services: image
            ? [
                {
                  name: 'web',
                  image,
                  unit: { active: 'active', sub: 'running', restarts: 0 },
                  ready: true,
                },
              ]
            : [],
        },
      });
    }
    return batch;
  }

  private rollback(
    device: string,
    generation: number,
    fromImage: string,
    toImage: string,
    reason: string,
  ): DeviceEvent {
    return {
      id: randomUUID(),
      device,
      at: new Date().toISOString(),
      type: 'rollback',
      service: 'web',
      generation,
      trigger: 'apply',
      fromImage,
      toImage,
      reason,
      restored: true,
    };
  }
}

/**
 * The fleet of FLEET: service web at WEB_V1 assigned by groups edge (site=berlin) and lab
 * (site=paris, priority 20, web pinned to LAB_PIN), paris-02 also pinned on the device.
 */
export async function seedFleet(db: Database): Promise<void> {
  const prisma = db.prisma;
  await prisma.device.createMany({
    data: FLEET.map((d) => ({ id: d.id, labels: { site: d.site, tier: 'edge' }, online: true })),
  });
  const spec = ServiceSpec.parse({ name: 'web', image: WEB_V1 });
  await prisma.service.create({ data: { name: 'web' } });
  await prisma.serviceRevision.create({
    data: { serviceName: 'web', revision: 1, spec, image: WEB_V1 },
  });
  await prisma.group.create({ data: { name: 'edge', selector: 'site=berlin', priority: 10 } });
  await prisma.group.create({ data: { name: 'lab', selector: 'site=paris', priority: 20 } });
  for (const group of ['edge', 'lab']) {
    await prisma.assignment.create({ data: { groupName: group, serviceName: 'web', revision: 1 } });
  }
  await prisma.pin.create({ data: { groupName: 'lab', serviceName: 'web', image: LAB_PIN } });
  await prisma.pin.create({
    data: { deviceId: 'paris-02', serviceName: 'web', image: DEVICE_PIN },
  });
}
