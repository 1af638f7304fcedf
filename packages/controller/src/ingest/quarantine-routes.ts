import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DeviceId } from '@podfleet/shared';
import { cutPage, decodeCursor, PageQuery, pageOf } from '../http/pages.js';

export const QuarantineView = z.object({
  id: z.string(),
  /** The device its topic names (it may not be enrolled). */
  device: z.string().nullable(),
  topic: z.string(),
  reason: z.string(),
  /** The first 4 KiB of the payload, as text. */
  excerpt: z.string(),
  payloadBytes: z.number().int(),
  /** By the receiving controller's clock. */
  receivedAt: z.date(),
});
export type QuarantineView = z.input<typeof QuarantineView>;

export const QuarantineQuery = z.strictObject({ device: DeviceId.optional(), ...PageQuery });

const Cursor = z.tuple([z.string().regex(/^\d{1,19}$/)]);

/**
 * GET /v1/quarantine: device messages ingest did not store, newest first, with why (outside the
 * bounds of what a device may send, or refused by the database). docs/security.md.
 */
export function quarantineRoutes(app: FastifyInstance): void {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/quarantine',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['events'],
        summary: 'Device messages not stored, with why; newest first',
        querystring: QuarantineQuery,
        response: { 200: pageOf(QuarantineView) },
      },
    },
    async (request) => {
      const { device, limit, cursor } = request.query;
      const before = cursor === undefined ? undefined : BigInt(decodeCursor(cursor, Cursor)[0]);
      const rows = await app.deps.db.prisma.quarantinedMessage.findMany({
        where: {
          ...(device === undefined ? {} : { deviceId: device }),
          ...(before === undefined ? {} : { id: { lt: before } }),
        },
        orderBy: { id: 'desc' },
        take: limit + 1,
      });
      return cutPage(
        rows,
        limit,
        (row) => [row.id.toString()],
        (row) => ({
          id: row.id.toString(),
          device: row.deviceId,
          topic: row.topic,
          reason: row.reason,
          excerpt: row.excerpt,
          payloadBytes: row.payloadBytes,
          receivedAt: row.receivedAt,
        }),
      );
    },
  );
}
