import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { pageOf } from '../http/pages.js';
import { EventQuery, EventView, listEvents } from './list.js';

/** GET /v1/events: what devices reported (apply, auto-update, rollback, drift, error). */
export function eventRoutes(app: FastifyInstance): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/events',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['events'],
        summary: 'Device events, newest first; filter by device, type and time',
        querystring: EventQuery,
        response: { 200: pageOf(EventView) },
      },
    },
    async (request) => listEvents(app.deps.db.prisma, request.query),
  );
}
