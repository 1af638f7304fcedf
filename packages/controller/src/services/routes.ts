import { runningVersions } from '../compliance/versions.js';
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { canonicalJson } from '@podfleet/shared';
import { commitChange } from '../audit/change.js';
import type { ServiceRevision } from '../db/generated/client.js';
import { HttpError, notFound } from '../http/errors.js';
import { cutPage, decodeCursor, PageQuery, pageOf } from '../http/pages.js';
import { downgradeProblems, rolledOutImages } from './rolled-out.js';
import {
  AppliedRevision,
  ApplyService,
  RevisionParams,
  RevisionView,
  ServiceDetail,
  ServiceListQuery,
  ServiceParams,
  ServiceSummary,
} from './schemas.js';
import { unknownService } from './unknown-service.js';

const NameCursor = z.tuple([z.string()]);
const RevisionCursor = z.tuple([z.number().int()]);

/** Services and their immutable revisions: a changed spec is a new revision, never an edit. */
export function serviceRoutes(app: FastifyInstance): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();
  const prisma = () => app.deps.db.prisma;

  routes.post(
    '/services',
    {
      config: { role: 'operator' },
      schema: {
        tags: ['services'],
        summary: 'Store a spec: 201 with a new revision, or 200 with the latest if it is the same',
        body: ApplyService,
        response: { 200: AppliedRevision, 201: AppliedRevision },
      },
    },
    async (request, reply) => {
      const { spec, force } = request.body;
      const name = spec.name;
      const text = canonicalJson(spec);
      const applied = await commitChange(request, async (tx) => {
        await tx.$executeRaw`INSERT INTO services (name) VALUES (${name}) ON CONFLICT (name) DO NOTHING`;
        // Concurrent applies of one service take turns here, so revision numbers never collide.
        await tx.$queryRaw`SELECT name FROM services WHERE name = ${name} FOR UPDATE`;
        const latest = await tx.serviceRevision.findFirst({
          where: { serviceName: name },
          orderBy: { revision: 'desc' },
        });
        if (latest && canonicalJson(latest.spec) === text) {
          return { result: { ...revisionView(latest), created: false }, audit: undefined };
        }
        // A spec file applied again after rollouts must not quietly become the revision that the
        // next assign takes back to (decision 011).
        const rolledOut = await rolledOutImages(tx, name);
        const downgrades = downgradeProblems(name, spec.image, rolledOut);
        if (downgrades.length > 0 && !force) {
          throw new HttpError(
            409,
            `${name}: the image differs from what a rollout put in place`,
            downgrades,
          );
        }
        const revision = await tx.serviceRevision.create({
          data: {
            serviceName: name,
            revision: (latest?.revision ?? 0) + 1,
            spec,
            image: spec.image,
          },
        });
        // The spec itself may hold secrets in env: the audit row names it by hash.
        const specSha256 = createHash('sha256').update(text).digest('hex');
        return {
          result: { ...revisionView(revision), created: true },
          audit: {
            action: 'service.apply',
            target: `service/${name}`,
            details: {
              revision: revision.revision,
              image: spec.image,
              specSha256,
              ...(downgrades.length > 0
                ? { forcedOver: rolledOut.filter((placed) => placed.image !== spec.image) }
                : {}),
            },
          },
          // No fleet change: a new revision runs nowhere until a group is assigned it.
        };
      });
      return reply.code(applied.created ? 201 : 200).send(applied);
    },
  );

  routes.get(
    '/services',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['services'],
        summary:
          'Services by name, with their latest revision and how many devices run which image',
        querystring: ServiceListQuery,
        response: { 200: pageOf(ServiceSummary) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const after = cursor === undefined ? undefined : decodeCursor(cursor, NameCursor)[0];
      const rows = await prisma().service.findMany({
        where: after === undefined ? {} : { name: { gt: after } },
        orderBy: { name: 'asc' },
        take: limit + 1,
        include: { revisions: { orderBy: { revision: 'desc' }, take: 1 } },
      });
      const versions = await runningVersions(
        prisma(),
        rows.slice(0, limit).map((row) => row.name),
      );
      return cutPage(
        rows,
        limit,
        (row) => [row.name],
        (row): ServiceSummary => {
          const [latest] = row.revisions;
          return {
            name: row.name,
            createdAt: row.createdAt,
            latest: latest
              ? { revision: latest.revision, image: latest.image, createdAt: latest.createdAt }
              : null,
            running: versions.get(row.name) ?? [],
          };
        },
      );
    },
  );

  routes.get(
    '/services/:name',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['services'],
        summary: 'A service: its latest revision, and where it is assigned and pinned',
        params: ServiceParams,
        response: { 200: ServiceDetail },
      },
    },
    async (request) => {
      const { name } = request.params;
      const service = await prisma().service.findUnique({
        where: { name },
        include: {
          revisions: { orderBy: { revision: 'desc' }, take: 1 },
          pins: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] },
        },
      });
      if (!service) throw await unknownService(prisma(), name);
      const assignments = await prisma().assignment.findMany({
        where: { serviceName: name },
        orderBy: { groupName: 'asc' },
      });
      const [latest] = service.revisions;
      return {
        name,
        createdAt: service.createdAt,
        latest: latest ? revisionView(latest) : null,
        assignedTo: assignments.map((a) => ({ group: a.groupName, revision: a.revision })),
        pins: service.pins.map((pin) => ({
          id: pin.id,
          group: pin.groupName,
          device: pin.deviceId,
          image: pin.image,
        })),
      };
    },
  );

  routes.get(
    '/services/:name/revisions',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['services'],
        summary: "A service's revisions, newest first",
        params: ServiceParams,
        querystring: z.strictObject(PageQuery),
        response: { 200: pageOf(RevisionView) },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { limit, cursor } = request.query;
      const known = await prisma().service.count({ where: { name } });
      if (known === 0) throw await unknownService(prisma(), name);
      const before = cursor === undefined ? undefined : decodeCursor(cursor, RevisionCursor)[0];
      const rows = await prisma().serviceRevision.findMany({
        where: { serviceName: name, ...(before === undefined ? {} : { revision: { lt: before } }) },
        orderBy: { revision: 'desc' },
        take: limit + 1,
      });
      return cutPage(rows, limit, (row) => [row.revision], revisionView);
    },
  );

  routes.get(
    '/services/:name/revisions/:revision',
    {
      config: { role: 'viewer' },
      schema: {
        tags: ['services'],
        summary: 'One revision of a service',
        params: RevisionParams,
        response: { 200: RevisionView },
      },
    },
    async (request) => {
      const { name, revision } = request.params;
      const row = await prisma().serviceRevision.findUnique({
        where: { serviceName_revision: { serviceName: name, revision } },
      });
      if (!row) throw notFound(`service ${name} revision ${revision}`);
      return revisionView(row);
    },
  );
}

export function revisionView(row: ServiceRevision): RevisionView {
  return {
    service: row.serviceName,
    revision: row.revision,
    image: row.image,
    spec: row.spec as Record<string, unknown>,
    createdAt: row.createdAt,
  };
}
