import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceSpec, generateSigningKey } from '@podfleet/shared';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { hashToken } from '../auth/tokens.js';
import { openDatabase, type Database } from '../db/client.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { DesiredSync } from '../desired/sync.js';
import { buildApp } from '../http/app.js';
import { apiRoutes } from '../http/routes.js';
import { runCliCaptured } from '../cli/testing.js';
import { RolloutEngine } from './engine.js';
import { loadRolloutOverrides } from './overrides.js';
import { rolloutRoutes } from './routes.js';

const log = pino({ level: process.env.PODFLEET_TEST_LOG ?? 'silent' });
const tokens = new Map([[hashToken('pft_admin'), { name: 'root', role: 'admin' as const }]]);
const admin = { authorization: 'Bearer pft_admin' };
const DEVICES = ['b1', 'b2', 'b3', 'b4', 'b5'];
const WEEK = 7 * 86_400;

const good = {
  service: 'web',
  image: 'registry.example/acme/web:2',
  targets: { groups: ['berlin'] },
  strategy: { canary: 1, batchSize: 2 },
};
const strategy = (fields: Record<string, unknown>) => ({
  ...good,
  strategy: { ...good.strategy, ...fields },
});
const policy = (fields: Record<string, unknown>) => strategy({ policy: fields });

// Each input the API must refuse, and the start of the line that names its field.
// prettier-ignore
const REFUSED: [what: string, spec: unknown, field: string][] = [
  ['batchSize 0', strategy({ batchSize: 0 }), 'body.spec.strategy.batchSize: must be at least 1'],
  ['batchSize "0%"', strategy({ batchSize: '0%' }), 'body.spec.strategy.batchSize: must be above 0%'],
  ['batchSize "100.5%"', strategy({ batchSize: '100.5%' }), 'body.spec.strategy.batchSize: must be at most 100%'],
  ['batchSize 2.5', strategy({ batchSize: 2.5 }), 'body.spec.strategy.batchSize: must be a count or a percentage'],
  ['maxFailures -1', strategy({ maxFailures: -1 }), 'body.spec.strategy.maxFailures: must be at least 0'],
  ['maxFailures "101%"', strategy({ maxFailures: '101%' }), 'body.spec.strategy.maxFailures: must be at most 100%'],
  ['canary -1', strategy({ canary: -1 }), 'body.spec.strategy.canary: '],
  ['healthTimeout 1e12', strategy({ healthTimeout: 1e12 }), 'body.spec.strategy.healthTimeout: must be at most 168h (7 days)'],
  ['healthTimeout 7 days + 1 s', strategy({ healthTimeout: WEEK + 1 }), 'body.spec.strategy.healthTimeout: must be at most 168h'],
  ['healthTimeout "169h"', strategy({ healthTimeout: '169h' }), 'body.spec.strategy.healthTimeout: must be at most 168h'],
  ['pauseBetweenBatches "8d"-like', strategy({ pauseBetweenBatches: '192h' }), 'body.spec.strategy.pauseBetweenBatches: must be at most 168h'],
  ['bake 7 days + 1 s', policy({ bake: WEEK + 1 }), 'body.spec.strategy.policy.bake: must be at most 168h'],
  ['bakeBetweenBatches "10081m"', policy({ bakeBetweenBatches: '10081m' }), 'body.spec.strategy.policy.bakeBetweenBatches: must be at most 168h'],
  ['successThreshold 0', policy({ successThreshold: 0 }), 'body.spec.strategy.policy.successThreshold: must be at least 1'],
  ['successThreshold "100.5%"', policy({ successThreshold: '100.5%' }), 'body.spec.strategy.policy.successThreshold: must be at most 100%'],
  ['minAvailable "150%"', policy({ disruptionBudget: { groupBy: ['site'], minAvailable: '150%' } }), 'body.spec.strategy.policy.disruptionBudget.minAvailable: must be at most 100%'],
  ['failureRate "100.5%"', policy({ abort: { failureRate: '100.5%' } }), 'body.spec.strategy.policy.abort.failureRate: must be at most 100%'],
  ['revision 3000000000', { ...good, image: undefined, revision: 3_000_000_000 }, 'body.spec.revision: '],
  ['image "img" (no tag, no digest)', { ...good, image: 'img' }, 'body.spec.image: names no version: give a tag or a digest'],
  ['canary 5 of 5 devices', strategy({ canary: 5 }), 'strategy.canary: 5 must be fewer than the 5 devices the rollout changes'],
  ['canary 100 of 5 devices', strategy({ canary: 100 }), 'strategy.canary: 100 must be fewer than the 5 devices the rollout changes'],
];

describe('rollout input the API refuses, with nothing written', () => {
  let scratch: ScratchDatabase;
  let db: Database;
  let app: FastifyInstance;
  let engine: RolloutEngine;
  const routes: RouteOptions[] = [];

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    db = await openDatabase({ DATABASE_URL: scratch.url });
    await db.migrate();
    const sync = new DesiredSync({
      db,
      publisher: { publish: async () => undefined, clear: async () => undefined },
      key: generateSigningKey(),
      log,
      rollouts: loadRolloutOverrides,
    });
    engine = new RolloutEngine({ db, sync, log });
    const collect = (v1: FastifyInstance) => void v1.addHook('onRoute', (r) => void routes.push(r));
    app = await buildApp({ db, fleet: sync, log, tokens: async (hash) => tokens.get(hash) }, [
      collect,
      ...apiRoutes(),
      rolloutRoutes(engine),
    ]);
    await db.prisma.device.createMany({
      data: DEVICES.map((id) => ({ id, labels: { site: 'berlin' }, online: true })),
    });
    const spec = ServiceSpec.parse({ name: 'web', image: 'registry.example/acme/web:1' });
    await db.prisma.service.create({ data: { name: 'web' } });
    await db.prisma.serviceRevision.create({
      data: { serviceName: 'web', revision: 1, spec, image: spec.image },
    });
    await db.prisma.group.create({ data: { name: 'berlin', selector: 'site=berlin' } });
    await db.prisma.assignment.create({
      data: { groupName: 'berlin', serviceName: 'web', revision: 1 },
    });
    await sync.recompute();
  });
  afterAll(async () => {
    await engine.close();
    await app.close();
    await db.close();
    await scratch.drop();
  });

  const written = async () => ({
    rollouts: await db.prisma.rollout.count(),
    devices: await db.prisma.rolloutDevice.count(),
    audit: await db.prisma.auditEntry.count(),
  });

  describe.each(['/v1/rollouts', '/v1/rollouts/plan'])('POST %s', (url) => {
    it.each(REFUSED)('refuses %s: 400 naming the field', async (_what, spec, field) => {
      const before = await written();
      const response = await app.inject({ method: 'POST', url, headers: admin, payload: { spec } });
      expect(response.statusCode, response.body).toBe(400);
      const { issues } = response.json() as { issues: string[] };
      expect(issues).toHaveLength(1);
      expect(issues[0]).toContain(field);
      expect(await written()).toEqual(before);
    });

    it('answers a text/plain body 415, with nothing written', async () => {
      const before = await written();
      const response = await app.inject({
        method: 'POST',
        url,
        headers: { ...admin, 'content-type': 'text/plain' },
        payload: JSON.stringify({ spec: good }),
      });
      expect(response.statusCode).toBe(415);
      expect(await written()).toEqual(before);
    });
  });

  it('plans and starts the last accepted values: canary 4 of 5, 7-day durations, 100%', async () => {
    const edge = strategy({
      canary: 4,
      batchSize: '100%',
      maxFailures: '100%',
      healthTimeout: '168h',
      policy: { bake: WEEK, successThreshold: '0.1%', abort: { failureRate: '100%' } },
    });
    const plan = await app.inject({
      method: 'POST',
      url: '/v1/rollouts/plan',
      headers: admin,
      payload: { spec: edge },
    });
    expect(plan.statusCode, plan.body).toBe(200);
    expect(plan.json().batches.map((b: { devices: unknown[] }) => b.devices.length)).toEqual([
      4, 1,
    ]);
    const started = await app.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: admin,
      payload: { spec: edge },
    });
    expect(started.statusCode, started.body).toBe(201);
    await engine.operate(started.json().id, 'abort', 'root');
  });

  it('the CLI names --canary with both numbers when the controller refuses it', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const before = await written();
    const run = await runCliCaptured([
      'rollout', 'start', 'web', good.image, '--group', 'berlin', '--canary', '100',
      '--url', address, '--token', 'pft_admin',
    ]); // prettier-ignore
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(
      'podfleet: 400 --canary: 100 must be fewer than the 5 devices the rollout changes (a canary leaves devices for the batches)\n',
    );
    expect(await written()).toEqual(before);
  });

  it('answers every body-taking route of the API 415 for text/plain', async () => {
    const bodied = routes.filter((r) =>
      [r.method].flat().some((m) => ['POST', 'PUT', 'PATCH'].includes(m)),
    );
    expect(bodied.length).toBeGreaterThan(10);
    const answers = new Map<string, number>();
    for (const route of bodied) {
      for (const method of [route.method].flat().filter((m) => m !== 'GET' && m !== 'HEAD')) {
        const url = route.url.replace(/:(\w+)/g, (_, name: string) =>
          name === 'id' ? '00000000-0000-4000-8000-000000000000' : 'x',
        );
        const response = await app.inject({
          method: method as 'POST',
          url,
          headers: { ...admin, 'content-type': 'text/plain' },
          payload: '{}',
        });
        answers.set(`${method} ${route.url}`, response.statusCode);
      }
    }
    expect([...answers].filter(([, status]) => status !== 415)).toEqual([]);
  });
});
