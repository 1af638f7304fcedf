import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { registerAuth, type TokenLookup } from '../auth/plugin.js';
import type { Database } from '../db/client.js';
import type { DesiredState } from '../desired/index.js';
import { registerErrorHandler } from './errors.js';
import { zodValidatorCompiler } from './validation.js';

/** What the routes need to tell the rest of the controller, and to ask it. */
export interface Fleet {
  /** Desired state may have changed (labels, groups, assignments, pins): recompute and publish. */
  changed(reason: string): void;
  /** Why a device runs what it runs: resolutions and conflicts, computed now. */
  explain(deviceId: string): Promise<DesiredState | undefined>;
  /** A device was deleted: clear what was published for it. */
  forget(deviceId: string): Promise<void>;
}

export interface AppDeps {
  db: Database;
  fleet: Fleet;
  log: Logger;
  /** Overrides the token lookup (tests); by default, live api_tokens rows by hash. */
  tokens?: TokenLookup;
}

declare module 'fastify' {
  interface FastifyInstance {
    deps: AppDeps;
  }
}

/** A plugin that registers one feature's routes under /v1. */
export type RoutePlugin = (app: FastifyInstance) => Promise<void> | void;

/**
 * Builds the controller's HTTP app without listening (tests use `app.inject`): zod schemas from
 * the shared contracts validate requests and serialize responses, OpenAPI at /docs, bearer-token
 * roles on every /v1 route.
 */
export async function buildApp(
  deps: AppDeps,
  routes: RoutePlugin[],
  /** Plugins outside /v1 (the dashboard at `/`). */
  pages: RoutePlugin[] = [],
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Requests are not logged one by one: ingest and the engine log what matters.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4 * 1024 * 1024,
  });
  // Bodies are JSON only: Fastify's built-in text/plain parser would hand a route a string, which
  // its schema then refuses as 400; without it any type but application/json is 415.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(zodValidatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('deps', deps);
  registerErrorHandler(app);
  registerAuth(app, deps.tokens ?? databaseTokens(deps.db));
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'podfleet controller', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.withTypeProvider<ZodTypeProvider>().get('/healthz', async () => ({ ok: true }));
  for (const page of pages) await app.register(async (root) => page(root));
  await app.register(
    async (v1) => {
      for (const route of routes) await route(v1);
    },
    { prefix: '/v1' },
  );
  return app;
}

function databaseTokens(db: Database): TokenLookup {
  return async (tokenHash) => {
    const token = await db.prisma.apiToken.findUnique({ where: { tokenHash } });
    if (!token || token.revokedAt) return undefined;
    return { name: token.name, role: token.role };
  };
}
