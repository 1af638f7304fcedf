import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { commitChange } from '../audit/change.js';
import { hashToken } from '../auth/tokens.js';
import type { EnrollmentToken } from '../db/generated/client.js';
import { notFound } from '../http/errors.js';
import { cutPage, decodeCursor, pageOf } from '../http/pages.js';
import {
  CreateEnrollmentToken,
  EnrollmentTokenParams,
  EnrollmentTokenQuery,
  EnrollmentTokenView,
  IssuedEnrollmentToken,
} from './schemas.js';

const Cursor = z.tuple([z.iso.datetime(), z.uuid()]);

/** A one-time enrollment token: `pfe_` tells it apart from an API token (`pft_`) at a glance. */
function issueEnrollmentToken(): { token: string; hash: string } {
  const token = `pfe_${randomBytes(24).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

/** Enrollment tokens (admin): each lets one device enroll itself once, before it expires. */
export function enrollmentTokenRoutes(app: FastifyInstance): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.post(
    '/enrollment-tokens',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['enrollment'],
        summary: 'Issue a one-time enrollment token; the response is the only time it is shown',
        body: CreateEnrollmentToken,
        response: { 201: IssuedEnrollmentToken },
      },
    },
    async (request, reply) => {
      const { ttl, labels, group } = request.body;
      const { token, hash } = issueEnrollmentToken();
      const row = await commitChange(request, async (tx) => {
        if (group !== undefined && !(await tx.group.count({ where: { name: group } }))) {
          throw notFound(`group ${group}`);
        }
        const row = await tx.enrollmentToken.create({
          data: {
            tokenHash: hash,
            expiresAt: new Date(Date.now() + ttl * 1000),
            labels,
            groupName: group ?? null,
          },
        });
        return {
          result: row,
          audit: {
            action: 'enrollment-token.create',
            target: `enrollment-token/${row.id}`,
            details: { ttl, labels, group: group ?? null, expiresAt: row.expiresAt.toISOString() },
          },
        };
      });
      return reply.code(201).send({ ...enrollmentTokenView(row, new Date()), token });
    },
  );

  routes.get(
    '/enrollment-tokens',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['enrollment'],
        summary: 'Enrollment tokens, oldest first, with their state (never the tokens themselves)',
        querystring: EnrollmentTokenQuery,
        response: { 200: pageOf(EnrollmentTokenView) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query;
      const where =
        cursor === undefined
          ? {}
          : (([at, id]) => ({
              OR: [
                { createdAt: { gt: new Date(at) } },
                { createdAt: new Date(at), id: { gt: id } },
              ],
            }))(decodeCursor(cursor, Cursor));
      const rows = await app.deps.db.prisma.enrollmentToken.findMany({
        where,
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: limit + 1,
      });
      const now = new Date();
      return cutPage(
        rows,
        limit,
        (row) => [row.createdAt.toISOString(), row.id],
        (row) => enrollmentTokenView(row, now),
      );
    },
  );

  routes.delete(
    '/enrollment-tokens/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['enrollment'],
        summary: 'Withdraw an enrollment token (used or not)',
        params: EnrollmentTokenParams,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await commitChange(request, async (tx) => {
        const { count } = await tx.enrollmentToken.deleteMany({ where: { id } });
        if (count === 0) throw notFound(`enrollment token ${id}`);
        return {
          result: undefined,
          audit: { action: 'enrollment-token.delete', target: `enrollment-token/${id}` },
        };
      });
      return reply.code(204).send();
    },
  );
}

function enrollmentTokenView(row: EnrollmentToken, now: Date): EnrollmentTokenView {
  return {
    id: row.id,
    state: row.usedAt ? 'used' : row.expiresAt <= now ? 'expired' : 'active',
    expiresAt: row.expiresAt,
    usedAt: row.usedAt,
    labels: row.labels as Record<string, string>,
    group: row.groupName,
    createdAt: row.createdAt,
  };
}
