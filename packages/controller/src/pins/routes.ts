import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { commitChange } from '../audit/change.js';
import type { Pin, Prisma } from '../db/generated/client.js';
import { lockDevice } from '../devices/device-rows.js';
import { lockGroup } from '../groups/view.js';
import { notFound } from '../http/errors.js';
import { cutPage, decodeCursor, pageOf } from '../http/pages.js';
import { PinParams, PinQuery, PinView, SetPin } from './schemas.js';
import { unknownService } from '../services/unknown-service.js';

const Cursor = z.tuple([z.iso.datetime(), z.uuid()]);

/** Pins: a group's or a device's service runs this image, by digest, with auto-update off. */
export function pinRoutes(app: FastifyInstance): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.put(
    '/pins',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['pins'],
        summary: "Pin a group's or a device's service to an image digest (replaces its pin)",
        body: SetPin,
        response: { 200: PinView, 201: PinView },
      },
    },
    async (request, reply) => {
      const { group, device, service, image } = request.body;
      const owner = group !== undefined ? { groupName: group } : { deviceId: device! };
      const target = group !== undefined ? `group/${group}` : `device/${device}`;
      const { pin, created } = await commitChange(request, async (tx) => {
        // Checked one by one so that the answer names what is missing. The owner's row stays
        // locked: pins of one owner change in turns, each replacing what the one before set.
        if (group !== undefined) await lockGroup(tx, group);
        if (device !== undefined) await lockDevice(tx, device);
        if (!(await tx.service.count({ where: { name: service } }))) {
          throw await unknownService(tx, service);
        }
        const previous = await tx.pin.findFirst({ where: { ...owner, serviceName: service } });
        const pin = previous
          ? await tx.pin.update({ where: { id: previous.id }, data: { image } })
          : await tx.pin.create({ data: { ...owner, serviceName: service, image } });
        return {
          result: { pin, created: !previous },
          audit: {
            action: 'pin.set',
            target,
            details: { service, image, previous: previous?.image ?? null },
          },
          fleet: `${target}: ${service} pinned`,
        };
      });
      return reply.code(created ? 201 : 200).send(pinView(pin));
    },
  );

  routes.get(
    '/pins',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['pins'],
        summary: 'Pins, oldest first; filter by group, device and service',
        querystring: PinQuery,
        response: { 200: pageOf(PinView) },
      },
    },
    async (request) => {
      const { group, device, service, limit, cursor } = request.query;
      const where: Prisma.PinWhereInput = {
        ...(group === undefined ? {} : { groupName: group }),
        ...(device === undefined ? {} : { deviceId: device }),
        ...(service === undefined ? {} : { serviceName: service }),
      };
      if (cursor !== undefined) {
        const [at, id] = decodeCursor(cursor, Cursor);
        where.OR = [
          { createdAt: { gt: new Date(at) } },
          { createdAt: new Date(at), id: { gt: id } },
        ];
      }
      const rows = await app.deps.db.prisma.pin.findMany({
        where,
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: limit + 1,
      });
      return cutPage(rows, limit, (row) => [row.createdAt.toISOString(), row.id], pinView);
    },
  );

  routes.delete(
    '/pins/:id',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['pins'],
        summary: 'Unpin: the service follows its rollout or revision again',
        params: PinParams,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await commitChange(request, async (tx) => {
        // One statement: of two deletions of one pin, the second finds nothing (404, not 409).
        const [pin] = await tx.$queryRaw<
          {
            groupName: string | null;
            deviceId: string | null;
            serviceName: string;
            image: string;
          }[]
        >`DELETE FROM pins WHERE id = ${id}::uuid
          RETURNING group_name AS "groupName", device_id AS "deviceId",
                    service_name AS "serviceName", image`;
        if (!pin) throw notFound(`pin ${id}`);
        const target = pin.groupName !== null ? `group/${pin.groupName}` : `device/${pin.deviceId}`;
        return {
          result: undefined,
          audit: {
            action: 'pin.delete',
            target,
            details: { id, service: pin.serviceName, image: pin.image },
          },
          fleet: `${target}: ${pin.serviceName} unpinned`,
        };
      });
      return reply.code(204).send();
    },
  );
}

function pinView(pin: Pin): PinView {
  return {
    id: pin.id,
    group: pin.groupName,
    device: pin.deviceId,
    service: pin.serviceName,
    image: pin.image,
    createdAt: pin.createdAt,
  };
}
