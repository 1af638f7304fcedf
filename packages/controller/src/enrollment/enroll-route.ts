import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { commitChange } from '../audit/change.js';
import { hashToken } from '../auth/tokens.js';
import { complianceOf } from '../compliance/read.js';
import { deviceView } from '../devices/view.js';
import type { RoutePlugin } from '../http/app.js';
import { conflict, HttpError } from '../http/errors.js';
import {
  issueCredentials,
  registerCredentialIssuers,
  type CredentialIssuer,
} from './credentials.js';
import { RateLimiter, type RateRule } from './rate-limit.js';
import { Enroll, Enrolled } from './schemas.js';

const TooManyAttempts = z.object({ error: z.string(), message: z.string() });

export interface EnrollOptions {
  /** What an enrolled device receives besides its record (see CredentialIssuer). */
  issuers?: readonly CredentialIssuer[];
  /** Attempts per client address; 10 a minute unless given. */
  rateLimit?: RateRule;
}

const refused = () => new HttpError(401, 'enrollment token unknown, used or expired');

/**
 * POST /v1/enroll: a device enrolls itself with a one-time token, which is its only credential
 * (no bearer token). Attempts are limited per client address before anything else is looked at,
 * so that tokens cannot be guessed at speed.
 */
export function enrollRoute(options: EnrollOptions = {}): RoutePlugin {
  const issuers = options.issuers ?? [];
  const rule = options.rateLimit ?? { limit: 10, windowMs: 60_000 };
  return (app: FastifyInstance) => {
    // One limiter per app, so that apps built in one process (tests) do not share counts.
    const limiter = new RateLimiter(rule);
    registerCredentialIssuers(app, issuers);
    app.withTypeProvider<ZodTypeProvider>().post(
      '/enroll',
      {
        onRequest: async (request, reply) => {
          const admission = limiter.take(request.ip);
          if (admission.allowed) return;
          const seconds = admission.retryAfterSeconds;
          return reply
            .code(429)
            .header('retry-after', String(seconds))
            .send({
              error: 'Too Many Requests',
              message: `too many enrollment attempts from ${request.ip}; retry in ${seconds}s`,
            });
        },
        schema: {
          tags: ['enrollment'],
          summary: 'Enroll a device with a one-time enrollment token',
          security: [],
          body: Enroll,
          response: { 201: Enrolled, 429: TooManyAttempts },
        },
      },
      async (request, reply) => {
        const { token, device: id, labels: asked } = request.body;
        const tokenHash = hashToken(token);
        const grant = await app.deps.db.prisma.enrollmentToken.findUnique({ where: { tokenHash } });
        if (!grant) throw refused();
        const enrolled = await commitChange(
          request,
          async (tx) => {
            const now = new Date();
            // The claim is the check: of two devices racing with one token, one gets the row.
            const claim = await tx.enrollmentToken.updateMany({
              where: { id: grant.id, usedAt: null, expiresAt: { gt: now } },
              data: { usedAt: now },
            });
            if (claim.count === 0) throw refused();
            if (await tx.device.count({ where: { id } })) throw conflict(`device ${id} exists`);
            // The token's labels are the admin's word: they win over what the device asks for.
            const labels = { ...asked, ...(grant.labels as Record<string, string>) };
            const group = grant.groupName;
            const device = await tx.device.create({
              data: {
                id,
                labels,
                ...(group ? { memberships: { create: { groupName: group } } } : {}),
              },
            });
            const credentials = await issueCredentials(issuers, { id, labels, group }, tx);
            return {
              result: { device: deviceView(device, await complianceOf(tx, id)), credentials },
              audit: {
                action: 'device.enroll',
                target: `device/${id}`,
                details: { enrollmentToken: grant.id, labels, group },
              },
              fleet: `device/${id}: enrolled`,
            };
          },
          `enrollment-token/${grant.id}`,
        );
        return reply.code(201).send(enrolled);
      },
    );
  };
}
