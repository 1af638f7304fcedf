import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { commitChange } from '../audit/change.js';
import { conflict, notFound } from '../http/errors.js';
import { cutPage, decodeCursor, PageQuery, pageOf } from '../http/pages.js';
import { devicesInGroup } from './membership.js';
import {
  CreateGroup,
  GroupDetailView,
  GroupMembers,
  GroupParams,
  GroupView,
  UpdateGroup,
} from './schemas.js';
import { groupInclude, groupView, lockGroup, requireDevices, storedSelector } from './view.js';

const Cursor = z.tuple([z.string()]);
const DeleteQuery = z.strictObject({
  /** Delete even when the group still assigns or pins services (they stop or change). */
  force: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .default(false),
});

/** Groups: a label selector and/or explicit members, with a priority. */
export function groupRoutes(app: FastifyInstance): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const prisma = () => app.deps.db.prisma;

  const readGroup = async (name: string) => {
    const group = await prisma().group.findUnique({ where: { name }, include: groupInclude });
    if (!group) throw notFound(`group ${name}`);
    return groupView(group);
  };

  routes.post(
    '/groups',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['groups'],
        summary: 'Create a group',
        body: CreateGroup,
        response: { 201: GroupView },
      },
    },
    async (request, reply) => {
      const { name, priority } = request.body;
      const selector = storedSelector(request.body.selector);
      const members = [...new Set(request.body.members)];
      await commitChange(request, async (tx) => {
        if (await tx.group.count({ where: { name } })) throw conflict(`group ${name} exists`);
        await requireDevices(tx, request.body.members, 'body.members');
        await tx.group.create({ data: { name, selector, priority } });
        await tx.groupMember.createMany({
          data: members.map((deviceId) => ({ groupName: name, deviceId })),
        });
        return {
          result: undefined,
          audit: {
            action: 'group.create',
            target: `group/${name}`,
            details: { selector, priority, members },
          },
          fleet: `group/${name}: created`,
        };
      });
      return reply.code(201).send(await readGroup(name));
    },
  );

  routes.get(
    '/groups',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['groups'],
        summary: 'Groups by name',
        querystring: z.strictObject(PageQuery),
        response: { 200: pageOf(GroupView) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const after = cursor === undefined ? undefined : decodeCursor(cursor, Cursor)[0];
      const rows = await prisma().group.findMany({
        where: after === undefined ? {} : { name: { gt: after } },
        orderBy: { name: 'asc' },
        take: limit + 1,
        include: groupInclude,
      });
      return cutPage(rows, limit, (row) => [row.name], groupView);
    },
  );

  routes.get(
    '/groups/:name',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['groups'],
        summary: 'A group, with every device in it now',
        params: GroupParams,
        response: { 200: GroupDetailView },
      },
    },
    async (request) => {
      const group = await readGroup(request.params.name);
      return { ...group, devices: await devicesInGroup(prisma(), group) };
    },
  );

  routes.patch(
    '/groups/:name',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['groups'],
        summary: 'Change the selector (null: members only) or the priority',
        params: GroupParams,
        body: UpdateGroup,
        response: { 200: GroupView },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { priority } = request.body;
      const selector =
        request.body.selector === undefined ? undefined : storedSelector(request.body.selector);
      await commitChange(request, async (tx) => {
        const { count } = await tx.group.updateMany({
          where: { name },
          data: {
            ...(selector === undefined ? {} : { selector }),
            ...(priority === undefined ? {} : { priority }),
          },
        });
        if (count === 0) throw notFound(`group ${name}`);
        return {
          result: undefined,
          audit: {
            action: 'group.update',
            target: `group/${name}`,
            details: {
              ...(selector === undefined ? {} : { selector }),
              ...(priority === undefined ? {} : { priority }),
            },
          },
          fleet: `group/${name}: updated`,
        };
      });
      return readGroup(name);
    },
  );

  routes.delete(
    '/groups/:name',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['groups'],
        summary: 'Delete a group; refused while it assigns or pins services unless force=true',
        params: GroupParams,
        querystring: DeleteQuery,
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const { force } = request.query;
      await commitChange(request, async (tx) => {
        await lockGroup(tx, name);
        // One query at a time: Prisma runs an include's queries at once, which a transaction's
        // single connection can only queue.
        const assignments = await tx.assignment.findMany({
          where: { groupName: name },
          orderBy: { serviceName: 'asc' },
        });
        const pinned = await tx.pin.findMany({
          where: { groupName: name },
          orderBy: { serviceName: 'asc' },
        });
        const assigns = assignments.map((a) => a.serviceName);
        const pins = pinned.map((pin) => pin.serviceName);
        // Deleting a group stops its services (or unpins them) on every device in it: say so.
        if (!force && (assigns.length > 0 || pins.length > 0)) {
          const what = [
            ...(assigns.length ? [`assigns ${assigns.join(', ')}`] : []),
            ...(pins.length ? [`pins ${pins.join(', ')}`] : []),
          ].join(' and ');
          throw conflict(`group ${name} still ${what}; remove them first or pass force=true`);
        }
        await tx.group.delete({ where: { name } });
        return {
          result: undefined,
          audit: {
            action: 'group.delete',
            target: `group/${name}`,
            details: { force, assignments: assigns, pins },
          },
          fleet: `group/${name}: deleted`,
        };
      });
      return reply.code(204).send();
    },
  );

  routes.put(
    '/groups/:name/members',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['groups'],
        summary: "Replace the group's explicit members",
        params: GroupParams,
        body: GroupMembers,
        response: { 200: GroupView },
      },
    },
    async (request) => {
      const { name } = request.params;
      const members = [...new Set(request.body.members)];
      await commitChange(request, async (tx) => {
        await lockGroup(tx, name);
        await requireDevices(tx, request.body.members, 'body.members');
        const listed = await tx.groupMember.findMany({ where: { groupName: name } });
        const before = new Set(listed.map((member) => member.deviceId));
        const after = new Set(members);
        await tx.groupMember.deleteMany({ where: { groupName: name } });
        await tx.groupMember.createMany({
          data: members.map((deviceId) => ({ groupName: name, deviceId })),
        });
        return {
          result: undefined,
          audit: {
            action: 'group.members',
            target: `group/${name}`,
            details: {
              added: members.filter((id) => !before.has(id)),
              removed: [...before].filter((id) => !after.has(id)),
            },
          },
          fleet: `group/${name}: members`,
        };
      });
      return readGroup(name);
    },
  );
}
