import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ServiceSpec } from '@podfleet/shared';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Database } from '../db/client.js';
import { hashToken } from '../auth/tokens.js';
import { buildApp, type RoutePlugin } from './app.js';

const tokens = new Map([
  [hashToken('pft_viewer'), { name: 'ci-viewer', role: 'viewer' as const }],
  [hashToken('pft_operator'), { name: 'ci-operator', role: 'operator' as const }],
]);

const echo: RoutePlugin = (app) => {
  app.withTypeProvider<ZodTypeProvider>().post(
    '/echo',
    {
      config: { role: 'operator' },
      schema: { body: ServiceSpec, response: { 200: z.object({ unit: z.string() }) } },
    },
    async (request) => ({ unit: `${request.body.name}.service` }),
  );
  app.get('/look', { config: { role: 'viewer' } }, async () => ({ ok: true }));
};

async function app() {
  return buildApp(
    {
      db: {} as Database,
      fleet: {
        changed: () => undefined,
        explain: async () => undefined,
        forget: async () => undefined,
      },
      log: pino({ level: 'silent' }),
      tokens: async (hash) => tokens.get(hash),
    },
    [echo],
  );
}

describe('the controller HTTP app', () => {
  it('validates a body against the shared schema and answers 400 naming each field', async () => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: 'Bearer pft_operator' },
      payload: {
        name: 'web',
        image: 'registry.example/web:1',
        env: { GREETING: 'a\nb' },
        ports: ['80'],
      },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: 'Bad Request',
      message: 'body.env.GREETING: newline not allowed',
      issues: [
        'body.env.GREETING: newline not allowed',
        'body.ports[0]: expected [ip:]host:container[/proto]',
      ],
    });
  });

  it('runs the route with the parsed body when it is valid', async () => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: 'Bearer pft_operator' },
      payload: { name: 'web', image: 'registry.example/web:1' },
    });
    expect(response.json()).toEqual({ unit: 'web.service' });
  });

  it.each([
    [undefined, 401, 'missing bearer token (Authorization: Bearer pft_…)'],
    ['Bearer pft_nobody', 401, 'unknown or revoked token'],
    ['Bearer pft_viewer', 403, 'needs role operator; token ci-viewer has viewer'],
  ])('refuses %s with %d', async (authorization, status, message) => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: authorization ? { authorization } : {},
      payload: { name: 'web', image: 'registry.example/web:1' },
    });
    expect(response.statusCode).toBe(status);
    expect(response.json().message).toBe(message);
  });

  it('lets a higher role do what a lower one may', async () => {
    const server = await app();
    const response = await server.inject({
      url: '/v1/look',
      headers: { authorization: 'Bearer pft_operator' },
    });
    expect(response.statusCode).toBe(200);
  });

  it.each([
    ['text/plain', '{"name":"web","image":"registry.example/web:1"}'],
    ['application/x-www-form-urlencoded', 'name=web&image=registry.example%2Fweb%3A1'],
    ['application/yaml', 'name: web\nimage: registry.example/web:1\n'],
  ])('answers a %s body 415, not 400', async (type, payload) => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: 'Bearer pft_operator', 'content-type': type },
      payload,
    });
    expect(response.statusCode).toBe(415);
    expect(response.json()).toMatchObject({ error: 'Unsupported Media Type' });
  });

  it('answers a body without a content type 415', async () => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: 'Bearer pft_operator' },
      payload: Buffer.from('{"name":"web","image":"registry.example/web:1"}'),
    });
    expect(response.statusCode).toBe(415);
  });

  // Two 1 MB keys: a 10 MB body is refused whole by the 4 MB body limit (413).
  it('echoes no control character and no unbounded value in a 400', async () => {
    const server = await app();
    const hostile = `\u001b]0;owned\u0007\u001b[2J\u009b31m\u202e${'A'.repeat(1024 * 1024)}`;
    const response = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: 'Bearer pft_operator' },
      payload: {
        name: 'web',
        image: 'registry.example/web:1',
        [hostile]: 1,
        env: { [hostile]: 'x' },
      },
    });
    expect(response.statusCode).toBe(400);
    expect(response.body.length).toBeLessThan(4096);
    const { message, issues } = response.json() as { message: string; issues: string[] };
    for (const line of [message, ...issues]) {
      expect(line).not.toMatch(/[\p{Cc}\u202e]/u);
      expect(line.length).toBeLessThanOrEqual(500);
    }
    expect(issues.join('\n')).toContain('\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202eAAA');
    expect(issues.join('\n')).toContain('more characters)');
  });

  it('shows the first 20 problems of a body with thousands, and how many more', async () => {
    const server = await app();
    const response = await server.inject({
      method: 'POST',
      url: '/v1/echo',
      headers: { authorization: 'Bearer pft_operator' },
      payload: { name: 'web', image: 'registry.example/web:1', ports: Array(5000).fill('x') },
    });
    expect(response.statusCode).toBe(400);
    const { issues } = response.json() as { issues: string[] };
    expect(issues).toHaveLength(21);
    expect(issues[20]).toBe('… and 4980 more problems');
  });

  it('serves the OpenAPI document at /docs', async () => {
    const server = await app();
    const response = await server.inject({ url: '/docs/json' });
    expect(response.statusCode).toBe(200);
    expect(Object.keys(response.json().paths)).toContain('/v1/echo');
  });
});
