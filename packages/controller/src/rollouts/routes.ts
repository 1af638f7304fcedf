import { readCompliance } from '../compliance/read.js';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { callerOf } from '../auth/plugin.js';
import type { RoutePlugin } from '../http/app.js';
import { notFound } from '../http/errors.js';
import { cutPage, decodeCursor, pageOf } from '../http/pages.js';
import type { RolloutEngine } from './engine.js';
import {
  PlanView,
  RolloutAction,
  RolloutBody,
  RolloutDeviceQuery,
  RolloutDeviceView,
  RolloutParams,
  RolloutQuery,
  RolloutStatusView,
  RolloutSummary,
} from './schemas.js';
import { FINISHED, type RolloutStatus } from './status.js';

/** How long one read of a rollout's status serves other readers (see rolloutRoutes). */
const STATUS_MAX_AGE_MS = 250;
const Cursor = z.tuple([z.string(), z.string()]);
const DeviceCursor = z.tuple([z.number().int(), z.string()]);

/** Rollouts: plan, start, list, status, pause / resume / abort, and a live stream (SSE). */
export function rolloutRoutes(engine: RolloutEngine): RoutePlugin {
  // Reads of one rollout's status (dashboards, `rollout watch`, streams, scripts polling it) share
  // one read for up to STATUS_MAX_AGE_MS: the status query joins every device of the rollout, and
  // ten pollers of a 10,000-device rollout each running it kept p99 above 100 ms (bench/RESULTS.md,
  // api). A tick this controller commits for the rollout ends the sharing at once; a change made by
  // another controller shows after at most STATUS_MAX_AGE_MS.
  const reading = new Map<string, { read: Promise<RolloutStatus | undefined>; at: number }>();
  const sharedStatus = (id: string): Promise<RolloutStatus | undefined> => {
    const shared = reading.get(id);
    if (shared && Date.now() - shared.at < STATUS_MAX_AGE_MS) return shared.read;
    const entry = { read: engine.status(id), at: Date.now() };
    reading.set(id, entry);
    entry.read.catch(() => {
      if (reading.get(id) === entry) reading.delete(id);
    });
    return entry.read;
  };
  engine.events.on('happening', (id: string) => reading.delete(id));
  engine.events.on('ticked', (id: string) => reading.delete(id));

  return (app: FastifyInstance) => {
    const routes = app.withTypeProvider<ZodTypeProvider>();
    // Open streams end before the server closes: it waits for every connection, and a stream
    // lasts as long as its rollout (a client that reconnects meets the next controller).
    const streams = new Set<() => void>();
    app.addHook('preClose', async () => {
      for (const stop of streams) stop();
    });

    routes.post(
      '/rollouts/plan',
      {
        config: { role: 'operator' },
        schema: {
          tags: ['rollouts'],
          summary: 'The batches a rollout would run, with nothing written',
          body: RolloutBody,
          response: { 200: PlanView },
        },
      },
      async (request) => {
        const { spec, targetImage, plan, forecast } = await engine.plan(request.body.spec);
        const batches = plan.batches.map((batch, i) => ({ ...batch, forecast: forecast[i]! }));
        return { service: spec.service, targetImage, ...plan, batches };
      },
    );

    routes.post(
      '/rollouts',
      {
        config: { role: 'operator' },
        schema: {
          tags: ['rollouts'],
          summary: 'Start a rollout',
          body: RolloutBody,
          response: { 201: RolloutStatusView },
        },
      },
      async (request, reply) => {
        const status = await engine.start(request.body.spec, callerOf(request).name);
        return reply.code(201).send(status);
      },
    );

    routes.get(
      '/rollouts',
      {
        config: { role: 'viewer' },
        schema: {
          tags: ['rollouts'],
          summary: 'Rollouts, newest first',
          querystring: RolloutQuery,
          response: { 200: pageOf(RolloutSummary) },
        },
      },
      async (request) => {
        const { service, state, limit, cursor } = request.query;
        const after = cursor === undefined ? undefined : decodeCursor(cursor, Cursor);
        const rows = await app.deps.db.prisma.rollout.findMany({
          where: {
            ...(service ? { service } : {}),
            ...(state ? { state } : {}),
            ...(after
              ? {
                  OR: [
                    { createdAt: { lt: new Date(after[0]) } },
                    { createdAt: new Date(after[0]), id: { lt: after[1] } },
                  ],
                }
              : {}),
          },
          orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
          take: limit + 1,
        });
        return cutPage(
          rows,
          limit,
          (row) => [row.createdAt.toISOString(), row.id],
          (row) => ({
            id: row.id,
            service: row.service,
            targetImage: row.targetImage,
            state: row.state,
            ...(row.reason ? { reason: row.reason } : {}),
            createdBy: row.createdBy,
            createdAt: row.createdAt.toISOString(),
            ...(row.finishedAt ? { finishedAt: row.finishedAt.toISOString() } : {}),
          }),
        );
      },
    );

    routes.get(
      '/rollouts/:id',
      {
        config: { role: 'viewer' },
        schema: {
          tags: ['rollouts'],
          summary: 'A rollout: counts per batch and state, and its first failures',
          params: RolloutParams,
          response: { 200: RolloutStatusView },
        },
      },
      async (request) => {
        const status = await sharedStatus(request.params.id);
        if (!status) throw notFound(`rollout ${request.params.id}`);
        return status;
      },
    );

    routes.get(
      '/rollouts/:id/devices',
      {
        config: { role: 'viewer' },
        schema: {
          tags: ['rollouts'],
          summary: 'A rollout’s devices, by batch and id, paged; optionally of one batch or state',
          params: RolloutParams,
          querystring: RolloutDeviceQuery,
          response: { 200: pageOf(RolloutDeviceView) },
        },
      },
      async (request) => {
        const { batch, state, limit, cursor } = request.query;
        const after = cursor === undefined ? undefined : decodeCursor(cursor, DeviceCursor);
        const rows = await engine.devices(request.params.id, {
          batch,
          state,
          after,
          limit: limit + 1,
        });
        if (!rows) throw notFound(`rollout ${request.params.id}`);
        // What each device of the page runs now, against its manifest: two queries a page.
        const compliance = await readCompliance(
          app.deps.db.prisma,
          rows.slice(0, limit).map((row) => row.id),
        );
        return cutPage(
          rows,
          limit,
          (row) => [row.batch, row.id],
          (row) => {
            const state = compliance.get(row.id)?.state;
            return state === undefined ? row : { ...row, compliance: state };
          },
        );
      },
    );

    routes.post(
      '/rollouts/:id/:action',
      {
        config: { role: 'operator' },
        schema: {
          tags: ['rollouts'],
          summary: 'Pause, resume, approve (the batch an approval holds) or abort a rollout',
          params: RolloutAction,
          response: { 200: RolloutStatusView },
        },
      },
      async (request) =>
        engine.operate(request.params.id, request.params.action, callerOf(request).name),
    );

    routes.get(
      '/rollouts/:id/stream',
      {
        config: { role: 'viewer' },
        schema: {
          tags: ['rollouts'],
          summary:
            'Server-sent events: `status` (the whole status, on every change) and `happening` (one line)',
          params: RolloutParams,
        },
      },
      async (request, reply) => {
        const first = await engine.status(request.params.id);
        if (!first) throw notFound(`rollout ${request.params.id}`);
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
        });
        let open = true;
        const send = (event: string, data: unknown) =>
          open && out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
        let last = JSON.stringify(first);
        send('status', first);
        const onHappening = (id: string, line: string) =>
          id === first.id && send('happening', { line });
        engine.events.on('happening', onHappening);
        // Statuses come from Postgres, so a stream sees progress made by any controller.
        const poll = setInterval(() => {
          sharedStatus(first.id).then(
            (status: RolloutStatus | undefined) => {
              if (!status) return;
              const text = JSON.stringify(status);
              if (text !== last) {
                last = text;
                send('status', status);
              }
              if (FINISHED.includes(status.state)) stop();
            },
            (error: unknown) =>
              request.log.warn({ err: error }, 'rollout stream: status read failed'),
          );
        }, 500);
        const keepAlive = setInterval(() => open && out.write(': keep-alive\n\n'), 15_000);
        const stop = () => {
          if (!open) return;
          open = false;
          streams.delete(stop);
          clearInterval(poll);
          clearInterval(keepAlive);
          engine.events.off('happening', onHappening);
          out.end();
        };
        streams.add(stop);
        if (FINISHED.includes(first.state)) stop();
        request.raw.on('close', stop);
      },
    );
  };
}
