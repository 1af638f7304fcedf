import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { commitChange } from '../audit/change.js';
import { issueToken } from '../auth/tokens.js';
import type { ApiToken, Prisma } from '../db/generated/client.js';
import { conflict, notFound } from '../http/errors.js';
import { cutPage, decodeCursor, pageOf } from '../http/pages.js';
import { lockTokens } from './lock.js';
import { CreateToken, IssuedToken, TokenParams, TokenQuery, TokenView } from './schemas.js';

const Cursor = z.tuple([z.iso.datetime(), z.uuid()]);

/** API tokens (admin): issue one (shown once), list, revoke (refused at once from then on). */
export function tokenRoutes(app: FastifyInstance): void {
  const routes = app.withTypeProvider<ZodTypeProvider>();

  routes.post(
    '/tokens',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'Issue an API token; the response is the only time it is shown',
        body: CreateToken,
        response: { 201: IssuedToken },
      },
    },
    async (request, reply) => {
      const { name, role } = request.body;
      const { token, hash } = issueToken();
      const row = await commitChange(request, async (tx) => {
        await lockTokens(tx);
        if (await tx.apiToken.count({ where: { name, revokedAt: null } })) {
          throw conflict(`token ${name} exists`);
        }
        const row = await tx.apiToken.create({ data: { name, role, tokenHash: hash } });
        return {
          result: row,
          audit: { action: 'token.create', target: `token/${row.id}`, details: { name, role } },
        };
      });
      return reply.code(201).send({ ...tokenView(row), token });
    },
  );

  routes.get(
    '/tokens',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'API tokens, oldest first (never the tokens themselves)',
        querystring: TokenQuery,
        response: { 200: pageOf(TokenView) },
      },
    },
    async (request) => {
      const { revoked, limit, cursor } = request.query;
      const where: Prisma.ApiTokenWhereInput = revoked ? {} : { revokedAt: null };
      if (cursor !== undefined) {
        const [at, id] = decodeCursor(cursor, Cursor);
        where.OR = [
          { createdAt: { gt: new Date(at) } },
          { createdAt: new Date(at), id: { gt: id } },
        ];
      }
      const rows = await app.deps.db.prisma.apiToken.findMany({
        where,
        orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
        take: limit + 1,
      });
      return cutPage(rows, limit, (row) => [row.createdAt.toISOString(), row.id], tokenView);
    },
  );

  routes.delete(
    '/tokens/:id',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['tokens'],
        summary: 'Revoke a token: requests with it get 401 from now on',
        params: TokenParams,
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      await commitChange(request, async (tx) => {
        await lockTokens(tx);
        const token = await tx.apiToken.findUnique({ where: { id } });
        if (!token) throw notFound(`token ${id}`);
        if (token.revokedAt) throw conflict(`token ${token.name} is already revoked`);
        // Revoking the last admin token would leave nobody able to issue another.
        if (
          token.role === 'admin' &&
          (await tx.apiToken.count({ where: { role: 'admin', revokedAt: null } })) === 1
        ) {
          throw conflict(`token ${token.name} is the last admin token; issue another first`);
        }
        await tx.apiToken.update({ where: { id }, data: { revokedAt: new Date() } });
        return {
          result: undefined,
          audit: {
            action: 'token.revoke',
            target: `token/${id}`,
            details: { name: token.name, role: token.role },
          },
        };
      });
      return reply.code(204).send();
    },
  );
}

function tokenView(row: ApiToken): TokenView {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: row.createdAt,
    revokedAt: row.revokedAt,
  };
}
