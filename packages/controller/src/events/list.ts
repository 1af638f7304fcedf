import { z } from 'zod';
import { DEVICE_EVENT_TYPES, DeviceId } from '@podfleet/shared';
import type { Prisma, PrismaClient } from '../db/client.js';
import { cutPage, decodeCursor, PageQuery, type Page } from '../http/pages.js';

export const EventView = z.object({
  id: z.string(),
  device: z.string(),
  type: z.string(),
  /** When it happened, by the device's clock (shown as the device's own: it may be off). */
  at: z.date(),
  /** When the controller received it, by its own clock: the order of every listing. */
  receivedAt: z.date(),
  /** The DeviceEvent as the agent sent it. */
  payload: z.record(z.string(), z.unknown()),
});
export type EventView = z.input<typeof EventView>;

const filters = {
  // An unknown type would match nothing: refused, so a typo is not an empty listing.
  type: z
    .string()
    .refine((type) => (DEVICE_EVENT_TYPES as readonly string[]).includes(type), {
      message: `must be one of ${DEVICE_EVENT_TYPES.join(', ')}`,
    })
    .optional(),
  /** Received at or after (inclusive), by the controller's clock. */
  since: z.iso.datetime({ offset: true }).optional(),
  /** Received before (exclusive), by the controller's clock. */
  until: z.iso.datetime({ offset: true }).optional(),
  ...PageQuery,
};

export const EventQuery = z.strictObject({ device: DeviceId.optional(), ...filters });
/** The same filters under /v1/devices/:id/events, where the path names the device. */
export const DeviceEventQuery = z.strictObject(filters);
export type EventFilter = z.output<typeof EventQuery>;

const Cursor = z.tuple([z.iso.datetime(), z.uuid()]);

/**
 * Device events newest received first, paged by (receivedAt, id) so that equal timestamps page
 * correctly. Never by the device's `at`: a device whose clock runs ahead would stay on top.
 */
export async function listEvents(
  prisma: PrismaClient,
  filter: EventFilter,
): Promise<Page<EventView>> {
  const { device, type, since, until, limit, cursor } = filter;
  const where: Prisma.DeviceEventWhereInput = {
    ...(device === undefined ? {} : { deviceId: device }),
    ...(type === undefined ? {} : { type }),
    receivedAt: {
      ...(since === undefined ? {} : { gte: new Date(since) }),
      ...(until === undefined ? {} : { lt: new Date(until) }),
    },
  };
  if (cursor !== undefined) {
    const [receivedAt, id] = decodeCursor(cursor, Cursor);
    const time = new Date(receivedAt);
    where.OR = [{ receivedAt: { lt: time } }, { receivedAt: time, id: { lt: id } }];
  }
  const rows = await prisma.deviceEvent.findMany({
    where,
    orderBy: [{ receivedAt: 'desc' }, { id: 'desc' }],
    take: limit + 1,
  });
  return cutPage(
    rows,
    limit,
    (row) => [row.receivedAt.toISOString(), row.id],
    (row) => ({
      id: row.id,
      device: row.deviceId,
      type: row.type,
      at: row.at,
      receivedAt: row.receivedAt,
      payload: row.payload as Record<string, unknown>,
    }),
  );
}
