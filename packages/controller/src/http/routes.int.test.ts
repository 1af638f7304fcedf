import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../auth/roles.js';
import type { RoutePlugin } from './app.js';
import { openApiHarness, type ApiHarness } from './route-testing.js';
import { apiRoutes } from './routes.js';

interface Route {
  method: string;
  url: string;
  role: Role | undefined;
}

const BELOW: Record<Role, Role | undefined> = {
  viewer: undefined,
  operator: 'viewer',
  admin: 'operator',
};
const PARAMS: Record<string, string> = {
  id: '00000000-0000-4000-8000-000000000000',
  name: 'edge',
  service: 'web',
  revision: '1',
};

const fill = (url: string) => url.replace(/:(\w+)/g, (_, name: string) => PARAMS[name] ?? 'x');

// Walks every route the API registers, so that a route added later without a role fails here.
describe('auth on every /v1 route', () => {
  let api: ApiHarness;
  const routes: Route[] = [];

  beforeAll(async () => {
    const collect: RoutePlugin = (app) => {
      app.addHook('onRoute', (route) => {
        for (const method of [route.method].flat()) {
          if (method === 'HEAD') continue;
          routes.push({ method, url: route.url, role: route.config?.role });
        }
      });
    };
    api = await openApiHarness({ routes: [collect, ...apiRoutes()] });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('finds the same routes the OpenAPI document lists', async () => {
    const docs = (await api.app.inject({ url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, unknown>>;
    };
    const documented = Object.entries(docs.paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, methods]) =>
        Object.keys(methods).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
      );
    expect(routes.map((route) => `${route.method} ${route.url}`).sort()).toEqual(documented.sort());
    expect(routes).toHaveLength(34);
  });

  it('leaves only POST /v1/enroll open, and it needs its own one-time token', async () => {
    expect(routes.filter((route) => route.role === undefined)).toEqual([
      { method: 'POST', url: '/v1/enroll', role: undefined },
    ]);
    const response = await api.app.inject({
      method: 'POST',
      url: '/v1/enroll',
      payload: { token: 'pfe_nothing', device: 'pi-1' },
    });
    expect(response.statusCode).toBe(401);
    expect(response.json().message).toBe('enrollment token unknown, used or expired');
  });

  it('refuses a request without a token (401) and one of too low a role (403), everywhere', async () => {
    const checked: string[] = [];
    for (const route of routes.filter((r) => r.role !== undefined)) {
      const method = route.method as 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
      const url = fill(route.url);
      const anonymous = await api.call(undefined, method, url, {});
      expect(anonymous.statusCode, `${route.method} ${route.url}`).toBe(401);
      const below = BELOW[route.role!];
      if (below) {
        const low = await api.call(below, method, url, {});
        expect(low.statusCode, `${route.method} ${route.url} as ${below}`).toBe(403);
        expect(low.json().message).toBe(`needs role ${route.role}; token ci-${below} has ${below}`);
      }
      checked.push(`${route.method} ${route.url} ${route.role}`);
    }
    expect(checked.length).toBe(routes.length - 1);
    expect(await api.prisma.auditEntry.count()).toBe(0);
  });

  it('lets every read through at its role and never tells the fleet about one', async () => {
    for (const route of routes.filter((r) => r.method === 'GET')) {
      const response = await api.call(route.role, 'GET', fill(route.url));
      expect([200, 404], `${route.url}: ${response.body}`).toContain(response.statusCode);
    }
    expect(api.fleet.take()).toEqual([]);
  });
});
