import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../http/errors.js';
import { roleAllows, type Role } from './roles.js';
import { hashToken } from './tokens.js';

export interface Caller {
  /** The token's name, written to the audit log as the actor. */
  name: string;
  role: Role;
}

/** Finds the live (not revoked) API token with this SHA-256, if any. */
export type TokenLookup = (tokenHash: string) => Promise<Caller | undefined>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role a caller needs; a route without one is open (health, docs, dashboard). */
    role?: Role;
  }
  interface FastifyRequest {
    caller?: Caller;
  }
}

/**
 * Bearer-token auth on every route that names a role: 401 without a valid token, 403 when the
 * token's role is not enough. Tokens are looked up by hash only.
 */
export function registerAuth(app: FastifyInstance, lookup: TokenLookup): void {
  app.decorateRequest('caller', undefined);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const needed = request.routeOptions.config.role;
    if (!needed) return;
    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!token) throw new HttpError(401, 'missing bearer token (Authorization: Bearer pft_…)');
    const caller = await lookup(hashToken(token));
    if (!caller) throw new HttpError(401, 'unknown or revoked token');
    if (!roleAllows(caller.role, needed)) {
      throw new HttpError(403, `needs role ${needed}; token ${caller.name} has ${caller.role}`);
    }
    request.caller = caller;
  });
}

/** The caller of a route that required a role. */
export function callerOf(request: FastifyRequest): Caller {
  if (!request.caller) throw new HttpError(401, 'not authenticated');
  return request.caller;
}
