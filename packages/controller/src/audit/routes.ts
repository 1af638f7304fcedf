import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Prisma } from '../db/client.js';
import { cutPage, decodeCursor, PageQuery, pageOf } from '../http/pages.js';

export const AuditEntryView = z.object({
  /** A decimal string: ids are 64-bit. */
  id: z.string(),
  at: z.date(),
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEntryView = z.input<typeof AuditEntryView>;

const AuditQuery = z.strictObject({
  actor: z.string().max(200).optional(),
  action: z.string().max(200).optional(),
  target: z.string().max(400).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  ...PageQuery,
});

const Cursor = z.tuple([z.string().regex(/^\d{1,20}$/)]);

/** GET /v1/audit: every change operators made, newest first (admin only: it names tokens). */
export function auditRoutes(app: FastifyInstance): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/audit',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['audit'],
        summary: 'Changes made through the API, newest first',
        querystring: AuditQuery,
        response: { 200: pageOf(AuditEntryView) },
      },
    },
    async (request) => {
      const { limit, cursor, actor, action, target, since, until } = request.query;
      const where: Prisma.AuditEntryWhereInput = {
        ...(actor === undefined ? {} : { actor }),
        ...(action === undefined ? {} : { action }),
        ...(target === undefined ? {} : { target }),
        at: {
          ...(since === undefined ? {} : { gte: new Date(since) }),
          ...(until === undefined ? {} : { lt: new Date(until) }),
        },
      };
      // Ids grow with time, so they alone order the log and key its cursor.
      if (cursor !== undefined) where.id = { lt: BigInt(decodeCursor(cursor, Cursor)[0]) };
      const rows = await app.deps.db.prisma.auditEntry.findMany({
        where,
        orderBy: { id: 'desc' },
        take: limit + 1,
      });
      return cutPage(
        rows,
        limit,
        (row) => [row.id.toString()],
        (row) => ({
          id: row.id.toString(),
          at: row.at,
          actor: row.actor,
          action: row.action,
          target: row.target,
          details: row.details as Record<string, unknown>,
        }),
      );
    },
  );
}
