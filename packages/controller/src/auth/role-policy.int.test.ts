import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceCommands } from '../commands/device-commands.js';
import { commandRoutes } from '../commands/routes.js';
import { dashboardPage } from '../dashboard/plugin.js';
import { buildApp, type RoutePlugin } from '../http/app.js';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';
import { apiRoutes } from '../http/routes.js';
import type { RolloutEngine } from '../rollouts/engine.js';
import { rolloutRoutes } from '../rollouts/routes.js';
import type { Role } from './roles.js';

interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
}

const PARAMS: Record<string, string> = {
  id: '00000000-0000-4000-8000-000000000000',
  name: 'edge',
  service: 'web',
  revision: '1',
};
const fill = (url: string) => url.replace(/:(\w+)/g, (_, name: string) => PARAMS[name] ?? 'x');

/** Routes about credentials: only an admin may see or change them. */
const CREDENTIAL_ROUTES = /^\/v1\/(tokens|enrollment-tokens|audit)(\/|$)/;

// The role policy, checked by requests against every route the controller registers (the whole
// API as `podfleet serve` builds it, rollouts, commands and the dashboard included): a route added
// later without the right role fails here, whatever role it declares.
describe('the role policy on every registered route', () => {
  let api: ApiHarness;
  let app: FastifyInstance;
  const routes: Route[] = [];

  beforeAll(async () => {
    api = await openApiHarness();
    const collect: RoutePlugin = (v1) => {
      v1.addHook('onRoute', (route) => {
        for (const method of [route.method].flat()) {
          if (method !== 'HEAD') routes.push({ method: method as Route['method'], url: route.url });
        }
      });
    };
    // Handlers are never reached here (auth answers first): the engines behind them can be absent.
    app = await buildApp(
      { db: api.db, fleet: api.fleet, log: pino({ level: 'silent' }) },
      [
        collect,
        ...apiRoutes(),
        // The status cache listens to the engine's happenings from the start.
        rolloutRoutes({ events: new EventEmitter() } as unknown as RolloutEngine),
        commandRoutes({} as DeviceCommands),
      ],
      [dashboardPage],
    );
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await api?.close();
  });

  const call = (role: Role | undefined, route: Route) =>
    app.inject({
      method: route.method,
      url: fill(route.url),
      headers: role ? { authorization: `Bearer ${api.tokens[role]}` } : {},
      ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { payload: {} }),
    });

  it('walks the whole API', () => {
    const seen = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const expected of [
      'POST /v1/groups',
      'DELETE /v1/devices/:id',
      'POST /v1/rollouts',
      'GET /v1/rollouts/:id/stream',
      'POST /v1/devices/:id/commands',
      'POST /v1/tokens',
    ]) {
      expect(seen, expected).toContain(expected);
    }
    expect(routes.length).toBeGreaterThan(35);
  });

  it('refuses every change to a viewer with 403 (POST /v1/enroll takes its own one-time token)', async () => {
    const changes = routes.filter((route) => route.method !== 'GET');
    const refused: string[] = [];
    for (const route of changes) {
      const response = await call('viewer', route);
      if (route.url === '/v1/enroll') {
        // No bearer token is looked at: the (empty) body is refused for lack of the one-time token.
        expect(response.statusCode).toBe(400);
        continue;
      }
      expect(response.statusCode, `${route.method} ${route.url}: ${response.body}`).toBe(403);
      refused.push(route.url);
    }
    expect(refused.length).toBe(changes.length - 1);
  });

  it('refuses an operator every token, enrollment-token and audit route with 403', async () => {
    const credentials = routes.filter((route) => CREDENTIAL_ROUTES.test(route.url));
    expect(credentials.length).toBeGreaterThanOrEqual(7);
    for (const route of credentials) {
      const response = await call('operator', route);
      expect(response.statusCode, `${route.method} ${route.url}`).toBe(403);
    }
  });

  it('answers 401 without a token on every /v1 route but the enrollment', async () => {
    for (const route of routes) {
      if (route.url === '/v1/enroll') continue;
      const response = await call(undefined, route);
      expect(response.statusCode, `${route.method} ${route.url}`).toBe(401);
    }
    expect(await api.prisma.auditEntry.count()).toBe(0);
  });

  it('serves nothing but reads outside /v1: the dashboard page, the API docs, health', async () => {
    // printRoutes draws the route tree; a line is a path segment and the methods that end there.
    const outside: string[] = [];
    const stack: string[] = [];
    for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
      const match = /^([│├└─\s]*)(\S+) \(([A-Z, ]+)\)$/.exec(line);
      if (!match) continue;
      const depth = match[1]!.length / 4;
      stack.length = depth;
      stack[depth] = match[2]!;
      const path = stack.join('');
      if (!path.startsWith('/v1/')) outside.push(`${match[3]} ${path}`);
    }
    expect(outside.length).toBeGreaterThan(3);
    for (const route of outside) expect(route).toMatch(/^(GET, HEAD|HEAD, GET) \//);
    const dashboard = await app.inject({ url: '/' });
    expect(dashboard.statusCode).toBe(200);
    expect(dashboard.body).not.toContain(api.tokens.admin);
  });
});
