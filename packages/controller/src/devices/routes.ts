import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { commitChange } from '../audit/change.js';
import type { DeviceCompliance } from '../compliance/compliance.js';
import { complianceOf, readCompliance, scanByCompliance } from '../compliance/read.js';
import { Prisma, type PrismaClient } from '../db/client.js';
import { parseSelector } from '../desired/index.js';
import { revokeCredentials } from '../enrollment/credentials.js';
import { DeviceEventQuery, EventView, listEvents } from '../events/list.js';
import { groupsOfDevice, memberCondition } from '../groups/membership.js';
import { conflict, notFound } from '../http/errors.js';
import { decodeCursor, encodeCursor, pageOf } from '../http/pages.js';
import {
  DeviceDetailView,
  DeviceParams,
  DeviceQuery,
  DeviceView,
  ManifestView,
  NewDevice,
  PatchDevice,
} from './schemas.js';
import { patchLabels } from './device-rows.js';
import { selectorCondition } from './selector-sql.js';
import { deviceView, labelsOf } from './view.js';
import { unknownDevice } from './unknown-device.js';

const Cursor = z.tuple([z.string()]);

/** Devices: list with label-selector, group and liveness filters; labels; delete; manifest. */
export function deviceRoutes(app: FastifyInstance): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const prisma = () => app.deps.db.prisma;

  routes.get(
    '/devices',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['devices'],
        summary: 'Devices by id; filter by label selector, group and online',
        querystring: DeviceQuery,
        response: { 200: pageOf(DeviceView) },
      },
    },
    async (request) => {
      const { selector, online, group, compliance, limit, cursor } = request.query;
      const conditions: Prisma.Sql[] = [];
      const parsed = selector === undefined ? undefined : parseSelector(selector);
      if (parsed?.ok) conditions.push(selectorCondition(parsed.selector));
      if (online !== undefined) conditions.push(Prisma.sql`online = ${online}`);
      if (group !== undefined) {
        const stored = await prisma().group.findUnique({ where: { name: group } });
        if (!stored) throw notFound(`group ${group}`);
        conditions.push(memberCondition(stored));
      }
      const after = cursor === undefined ? undefined : decodeCursor(cursor, Cursor)[0];
      const page =
        compliance === undefined
          ? await pageOfIds(prisma(), conditions, after, limit)
          : await scanByCompliance(prisma(), conditions, compliance, after, limit);
      const devices = await prisma().device.findMany({
        where: { id: { in: page.ids } },
        orderBy: { id: 'asc' },
      });
      const last = page.ids.at(-1);
      return {
        items: devices.map((device) => deviceView(device, page.compliance.get(device.id)!)),
        nextCursor: page.more && last !== undefined ? encodeCursor([last]) : null,
      };
    },
  );

  routes.get(
    '/devices/:id',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['devices'],
        summary: 'A device with its groups, pins and last state report',
        params: DeviceParams,
        response: { 200: DeviceDetailView },
      },
    },
    async (request) => deviceDetail(prisma(), request.params.id),
  );

  routes.post(
    '/devices',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['devices'],
        summary: 'Register a device ahead of its agent (provisioning), with its labels',
        body: NewDevice,
        response: { 201: DeviceDetailView },
      },
    },
    async (request, reply) => {
      const { id, labels } = request.body;
      await commitChange(request, async (tx) => {
        if (await tx.device.findUnique({ where: { id }, select: { id: true } })) {
          throw conflict(`device ${id} exists`);
        }
        await tx.device.create({ data: { id, labels } });
        return {
          result: undefined,
          audit: { action: 'device.create', target: `device/${id}`, details: { labels } },
          fleet: `device/${id}: registered`,
        };
      });
      return reply.code(201).send(await deviceDetail(prisma(), id));
    },
  );

  routes.patch(
    '/devices/:id',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['devices'],
        summary: 'Set or remove labels (JSON merge patch: null removes a label)',
        params: DeviceParams,
        body: PatchDevice,
        response: { 200: DeviceDetailView },
      },
    },
    async (request) => {
      const { id } = request.params;
      const patch = request.body.labels;
      await commitChange(request, async (tx) => {
        if (!(await patchLabels(tx, id, patch))) throw await unknownDevice(tx, id);
        return {
          result: undefined,
          audit: { action: 'device.label', target: `device/${id}`, details: { labels: patch } },
          fleet: `device/${id}: labels`,
        };
      });
      return deviceDetail(prisma(), id);
    },
  );

  routes.delete(
    '/devices/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['devices'],
        summary:
          'Forget a device: its memberships, pins and events go with it, and its credentials stop working',
        params: DeviceParams,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await commitChange(request, async (tx) => {
        const { count } = await tx.device.deleteMany({ where: { id } });
        if (count === 0) throw await unknownDevice(tx, id);
        // Its broker account goes in the same transaction: no deleted device keeps working.
        await revokeCredentials(request.server, id, tx);
        return {
          result: undefined,
          audit: { action: 'device.delete', target: `device/${id}` },
          fleet: `device/${id}: deleted`,
        };
      });
      // Its retained manifest would otherwise stay on the broker for whoever takes the id next.
      await request.server.deps.fleet.forget(id);
      return reply.code(204).send();
    },
  );

  routes.get(
    '/devices/:id/manifest',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['devices'],
        summary: 'The signed manifest last published, and why the device runs what it runs',
        params: DeviceParams,
        response: { 200: ManifestView },
      },
    },
    async (request) => {
      const { id } = request.params;
      const device = await prisma().device.findUnique({
        where: { id },
        select: { desiredGeneration: true, appliedGeneration: true, desiredManifest: true },
      });
      if (!device) throw await unknownDevice(prisma(), id);
      const explanation = await app.deps.fleet.explain(id);
      return {
        device: id,
        desiredGeneration: device.desiredGeneration,
        appliedGeneration: device.appliedGeneration,
        manifest: device.desiredManifest as Record<string, unknown> | null,
        explanation: explanation ?? null,
      };
    },
  );

  routes.get(
    '/devices/:id/events',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['devices', 'events'],
        summary: "The device's events, newest first",
        params: DeviceParams,
        querystring: DeviceEventQuery,
        response: { 200: pageOf(EventView) },
      },
    },
    async (request) => {
      const { id } = request.params;
      const known = await prisma().device.count({ where: { id } });
      if (known === 0) throw await unknownDevice(prisma(), id);
      return listEvents(prisma(), { ...request.query, device: id });
    },
  );
}

/**
 * A page of device ids after `after` matching `conditions`, with their compliance. Selectors and
 * membership are SQL on labels, so a filter costs one indexed scan, not a load of every device.
 */
async function pageOfIds(
  prisma: PrismaClient,
  conditions: Prisma.Sql[],
  after: string | undefined,
  limit: number,
): Promise<{ ids: string[]; compliance: Map<string, DeviceCompliance>; more: boolean }> {
  const all = after === undefined ? conditions : [...conditions, Prisma.sql`id > ${after}::text`];
  const where = all.length ? Prisma.sql`WHERE ${Prisma.join(all, ' AND ')}` : Prisma.empty;
  const rows = await prisma.$queryRaw<{ id: string }[]>`
    SELECT id FROM devices ${where} ORDER BY id LIMIT ${limit + 1}::int`;
  const ids = rows.slice(0, limit).map((row) => row.id);
  return { ids, compliance: await readCompliance(prisma, ids), more: rows.length > limit };
}

async function deviceDetail(prisma: PrismaClient, id: string): Promise<DeviceDetailView> {
  const device = await prisma.device.findUnique({ where: { id }, include: { pins: true } });
  if (!device) throw await unknownDevice(prisma, id);
  const groups = await groupsOfDevice(prisma, { id, labels: labelsOf(device) });
  const compliance = await complianceOf(prisma, id);
  return {
    ...deviceView(device, compliance),
    groups,
    pins: device.pins.map((pin) => ({ id: pin.id, service: pin.serviceName, image: pin.image })),
    lastState: device.lastState as Record<string, unknown> | null,
  };
}
