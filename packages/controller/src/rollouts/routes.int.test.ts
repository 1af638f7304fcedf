import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RolloutSpec, ServiceSpec, generateSigningKey } from '@podfleet/shared';
import type { FastifyInstance } from 'fastify';
import { hashToken } from '../auth/tokens.js';
import { openDatabase, type Database } from '../db/client.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { DesiredSync } from '../desired/sync.js';
import { buildApp } from '../http/app.js';
import { RolloutEngine } from './engine.js';
import { loadRolloutOverrides } from './overrides.js';
import { rolloutRoutes } from './routes.js';

const log = pino({ level: process.env.PODFLEET_TEST_LOG ?? 'silent' });
const tokens = new Map([
  [hashToken('pft_op'), { name: 'ops', role: 'operator' as const }],
  [hashToken('pft_view'), { name: 'watcher', role: 'viewer' as const }],
]);
const op = { authorization: 'Bearer pft_op' };
const V1 = 'registry.example/acme/web:1';
const V2 = 'registry.example/acme/web:2';

describe('rollout routes', () => {
  let scratch: ScratchDatabase;
  let db: Database;
  let app: FastifyInstance;
  let engine: RolloutEngine;

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
    app = await buildApp({ db, fleet: sync, log, tokens: async (hash) => tokens.get(hash) }, [
      rolloutRoutes(engine),
    ]);
    await db.prisma.device.createMany({
      data: ['a', 'b', 'c'].map((id) => ({ id, labels: { site: 'x' }, online: true })),
    });
    const spec = ServiceSpec.parse({ name: 'web', image: 'registry.example/acme/web:1' });
    await db.prisma.service.create({ data: { name: 'web' } });
    await db.prisma.serviceRevision.create({
      data: { serviceName: 'web', revision: 1, spec, image: spec.image },
    });
    await db.prisma.group.create({ data: { name: 'edge', selector: 'site=x' } });
    await db.prisma.assignment.create({
      data: { groupName: 'edge', serviceName: 'web', revision: 1 },
    });
    await sync.recompute();
  });
  afterAll(async () => {
    await engine.close();
    await app.close();
    await db.close();
    await scratch.drop();
  });

  const spec = {
    service: 'web',
    image: V2,
    targets: { groups: ['edge'] },
    strategy: { canary: 1, batchSize: 1 },
  };

  it('plans without writing: batches and each device’s image before and after', async () => {
    const response = await app.inject({
      method: 'POST',
      url: '/v1/rollouts/plan',
      headers: op,
      payload: { spec },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      service: 'web',
      targetImage: V2,
      total: 3,
      batches: [
        { kind: 'canary', devices: [{ id: 'a', from: 'registry.example/acme/web:1', to: V2 }] },
        { kind: 'batch', devices: [{ id: 'b' }] },
        { kind: 'batch', devices: [{ id: 'c' }] },
      ],
    });
    expect(await db.prisma.rollout.count()).toBe(0);
  });

  it('answers 400 naming the field of a bad spec, and 404 for an unknown group', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: op,
      payload: { spec: { ...spec, strategy: { batchSize: '200%' } } },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().issues[0]).toMatch(/^body\.spec\.strategy\.batchSize: /);
    const unknown = await app.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: op,
      payload: { spec: { ...spec, targets: { groups: ['nowhere'] } } },
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().message).toBe('group nowhere not found');
  });

  it('answers 400 naming the policy field the plan cannot honour, and plans a policy it can', async () => {
    const policy = {
      windows: [{ selector: 'site in (', schedule: 'Mon-Fri 01:00-05:00', timeZone: 'UTC' }],
      approval: { after: ['canary'] },
    };
    const refused = await app.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: op,
      payload: { spec: { ...spec, strategy: { policy } } },
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().issues).toEqual([
      'strategy.policy.approval.after[0]: the rollout has no canary batch',
      expect.stringMatching(/^strategy\.policy\.windows\[0\]\.selector: /),
    ]);
    const planned = await app.inject({
      method: 'POST',
      url: '/v1/rollouts/plan',
      headers: op,
      payload: {
        spec: { ...spec, strategy: { canary: 1, policy: { approval: { after: ['canary'] } } } },
      },
    });
    expect(planned.statusCode, planned.body).toBe(200);
    const forecasts = planned.json().batches.map((b: { forecast: string[] }) => b.forecast);
    expect(forecasts).toEqual([[], ["waits for an operator's approval after batch 0"], []]);
  });

  it('starts, reports per batch, pauses, refuses a second resume, and streams its status', async () => {
    const started = await app.inject({
      method: 'POST',
      url: '/v1/rollouts',
      headers: op,
      payload: { spec },
    });
    expect(started.statusCode).toBe(201);
    const id = started.json().id as string;
    const viewer = await app.inject({
      url: `/v1/rollouts/${id}`,
      headers: { authorization: 'Bearer pft_view' },
    });
    // Starting wakes the engine, which may already have taken it up: pending or running.
    expect(['pending', 'running']).toContain(viewer.json().state);
    expect(viewer.json()).toMatchObject({ counts: { total: 3 }, createdBy: 'ops' });
    const forbidden = await app.inject({
      method: 'POST',
      url: `/v1/rollouts/${id}/pause`,
      headers: { authorization: 'Bearer pft_view' },
    });
    expect(forbidden.statusCode).toBe(403);
    await engine.pass();
    const paused = await app.inject({
      method: 'POST',
      url: `/v1/rollouts/${id}/pause`,
      headers: op,
    });
    expect(paused.json()).toMatchObject({ state: 'paused', reason: 'paused by ops' });
    const again = await app.inject({
      method: 'POST',
      url: `/v1/rollouts/${id}/pause`,
      headers: op,
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toBe('cannot pause a rollout that is paused');

    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const stream = await fetch(`${address}/v1/rollouts/${id}/stream`, { headers: op });
    expect(stream.headers.get('content-type')).toBe('text/event-stream');
    const reader = stream.body!.getReader();
    const { value } = await reader.read();
    const text = new TextDecoder().decode(value);
    expect(text).toMatch(/^event: status\ndata: \{"id":"/);
    expect(JSON.parse(text.split('\n')[1]!.slice(6))).toMatchObject({ id, state: 'paused' });
    const aborted = await app.inject({
      method: 'POST',
      url: `/v1/rollouts/${id}/abort`,
      headers: op,
    });
    expect(aborted.json().state).toBe('rolling_back');
    await reader.cancel();
  });

  it('lists rollouts newest first, filtered by state', async () => {
    const list = await app.inject({ url: '/v1/rollouts?state=rolling_back', headers: op });
    expect(
      list.json().items.map((r: { service: string; state: string }) => [r.service, r.state]),
    ).toEqual([['web', 'rolling_back']]);
    const missing = await app.inject({
      url: '/v1/rollouts/00000000-0000-0000-0000-000000000000',
      headers: op,
    });
    expect(missing.statusCode).toBe(404);
  });

  it('counts devices per batch and state in one status, lists its failures, and pages its devices', async () => {
    await db.prisma.device.update({ where: { id: 'c' }, data: { online: false } });
    // Written directly, finished, so that no engine pass moves it while it is looked at.
    const rollout = await db.prisma.rollout.create({
      data: {
        service: 'web',
        spec: RolloutSpec.parse(spec) as object,
        targetImage: V2,
        state: 'failed',
        batchCount: 2,
        currentBatch: 1,
        batchStartedAt: new Date(),
        createdBy: 'ops',
        devices: {
          create: [
            { deviceId: 'a', batch: 0, fromImage: V1, toImage: V2, state: 'succeeded' },
            { deviceId: 'b', batch: 1, fromImage: V1, toImage: V2, state: 'failed', reason: 'web: not ready within 60s' }, // prettier-ignore
            { deviceId: 'c', batch: 1, fromImage: V1, toImage: V2, state: 'updating' },
          ],
        },
      },
    });
    const status = (await app.inject({ url: `/v1/rollouts/${rollout.id}`, headers: op })).json();
    expect(status.counts).toEqual({
      ...{ pending: 0, updating: 1, succeeded: 1, failed: 1, skipped: 0, reverting: 0 },
      ...{ reverted: 0, deferred: 0, offline: 1, total: 3 },
    });
    expect(
      status.batches.map((b: Record<string, unknown>) => [b.index, b.kind, b.state, b.total]),
    ).toEqual([
      [0, 'canary', 'done', 1],
      [1, 'batch', 'running', 2],
    ]);
    expect(status.batches[1].counts).toMatchObject({ failed: 1, updating: 1, offline: 1 });
    const b = { id: 'b', batch: 1, state: 'failed', from: V1, to: V2, online: true };
    expect(status.failures).toEqual([{ ...b, reason: 'web: not ready within 60s' }]);

    const devices = (query: string) =>
      app.inject({ url: `/v1/rollouts/${rollout.id}/devices${query}`, headers: op });
    const first = (await devices('?limit=2')).json();
    expect(first.items.map((d: { id: string }) => d.id)).toEqual(['a', 'b']);
    const second = (await devices(`?limit=2&cursor=${first.nextCursor}`)).json();
    expect(second).toEqual({
      // Its compliance now, beside its rollout state: offline says nothing of what it runs.
      items: [
        {
          id: 'c',
          batch: 1,
          state: 'updating',
          from: V1,
          to: V2,
          online: false,
          compliance: 'offline',
        },
      ],
      nextCursor: null,
    });
    const ids = async (query: string) =>
      (await devices(query)).json().items.map((d: { id: string }) => d.id);
    expect(await ids('?state=failed')).toEqual(['b']);
    expect(await ids('?batch=1')).toEqual(['b', 'c']);
    expect(await ids('?batch=0&state=failed')).toEqual([]);
    const missing = await app.inject({
      url: '/v1/rollouts/00000000-0000-0000-0000-000000000000/devices',
      headers: op,
    });
    expect(missing.statusCode).toBe(404);
  });
});
