import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { commitChange } from '../audit/change.js';
import { notFound } from '../http/errors.js';
import { unknownService } from '../services/unknown-service.js';
import { lockGroup, requireGroup } from './view.js';
import { AssignmentParams, AssignmentView, AssignRevision } from './schemas.js';

/** Assignments: a group runs one revision of a service. */
export function assignmentRoutes(app: FastifyInstance): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.put(
    '/groups/:name/services/:service',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['groups', 'services'],
        summary: 'Assign a revision of a service to a group (the latest when none is given)',
        params: AssignmentParams,
        body: AssignRevision,
        response: { 200: AssignmentView },
      },
    },
    async (request) => {
      const { name, service } = request.params;
      return commitChange(request, async (tx) => {
        await lockGroup(tx, name);
        const revision = await tx.serviceRevision.findFirst({
          where: {
            serviceName: service,
            ...(request.body.revision === undefined ? {} : { revision: request.body.revision }),
          },
          orderBy: { revision: 'desc' },
          select: { revision: true },
        });
        if (!revision) {
          if (request.body.revision === undefined) throw await unknownService(tx, service);
          throw notFound(`service ${service} revision ${request.body.revision}`);
        }
        const key = { groupName: name, serviceName: service };
        const previous = await tx.assignment.findUnique({ where: { groupName_serviceName: key } });
        const assignment = await tx.assignment.upsert({
          where: { groupName_serviceName: key },
          create: { ...key, revision: revision.revision },
          update: { revision: revision.revision },
        });
        return {
          result: {
            group: name,
            service,
            revision: assignment.revision,
            updatedAt: assignment.updatedAt,
          },
          audit: {
            action: 'assignment.set',
            target: `group/${name}`,
            details: { service, revision: revision.revision, previous: previous?.revision ?? null },
          },
          fleet: `group/${name}: ${service} revision ${revision.revision}`,
        };
      });
    },
  );

  routes.delete(
    '/groups/:name/services/:service',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['groups', 'services'],
        summary: 'Stop running a service in a group',
        params: AssignmentParams,
      },
    },
    async (request, reply) => {
      const { name, service } = request.params;
      await commitChange(request, async (tx) => {
        await requireGroup(tx, name);
        const { count } = await tx.assignment.deleteMany({
          where: { groupName: name, serviceName: service },
        });
        if (count === 0) throw notFound(`assignment of ${service} to group ${name}`);
        return {
          result: undefined,
          audit: { action: 'assignment.delete', target: `group/${name}`, details: { service } },
          fleet: `group/${name}: ${service} unassigned`,
        };
      });
      return reply.code(204).send();
    },
  );
}
