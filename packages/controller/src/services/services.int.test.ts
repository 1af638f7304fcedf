import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

const web = {
  name: 'web',
  image: 'registry.example/acme/web:1.4',
  env: { GREETING: 'hello' },
  ready: { timeout: '1m', settle: '15s' },
};

describe('services and revisions', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
  });
  afterAll(async () => {
    await api?.close();
  });

  it('stores a new spec as revision 1 (201), with every default filled in', async () => {
    const response = await api.call('operator', 'POST', '/v1/services', { spec: web });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      service: 'web',
      revision: 1,
      image: web.image,
      created: true,
      spec: { name: 'web', restart: 'on-failure', ready: { timeout: 60, settle: 15 } },
    });
  });

  it('answers the same spec with the existing revision (200), however it is written', async () => {
    // Same meaning, other spelling: durations in seconds, keys in another order, defaults given.
    const same = {
      restart: 'on-failure',
      ready: { settle: 15, timeout: 60 },
      env: { GREETING: 'hello' },
      image: web.image,
      name: 'web',
    };
    const response = await api.call('operator', 'POST', '/v1/services', { spec: same });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({ revision: 1, created: false });
    expect(await api.prisma.serviceRevision.count()).toBe(1);
    expect(await api.prisma.auditEntry.count({ where: { action: 'service.apply' } })).toBe(1);
  });

  it('stores a changed spec as the next revision and leaves the old one as it was', async () => {
    const before = (await api.call('viewer', 'GET', '/v1/services/web/revisions/1')).json();
    const changed = await api.call('operator', 'POST', '/v1/services', {
      spec: { ...web, image: 'registry.example/acme/web:1.5' },
    });
    expect(changed.statusCode).toBe(201);
    expect(changed.json()).toMatchObject({ revision: 2, image: 'registry.example/acme/web:1.5' });
    expect((await api.call('viewer', 'GET', '/v1/services/web/revisions/1')).json()).toEqual(
      before,
    );
    // Going back to an earlier spec is a new revision too: revisions only ever grow.
    const back = await api.call('operator', 'POST', '/v1/services', { spec: web });
    expect(back.json()).toMatchObject({ revision: 3, created: true });
  });

  it('gives concurrent applies of one service distinct revisions', async () => {
    const responses = await Promise.all(
      ['a', 'b', 'c', 'd'].map((tag) =>
        api.call('operator', 'POST', '/v1/services', {
          spec: { name: 'api', image: `registry.example/acme/api:${tag}` },
        }),
      ),
    );
    expect(responses.map((response) => response.statusCode)).toEqual([201, 201, 201, 201]);
    expect(responses.map((response) => response.json().revision).sort()).toEqual([1, 2, 3, 4]);
  });

  it('does not tell the fleet: a revision runs nowhere until it is assigned', () => {
    expect(api.fleet.take()).toEqual([]);
  });

  it('answers 400 naming the spec field, before anything is stored', async () => {
    const response = await api.call('operator', 'POST', '/v1/services', {
      spec: { name: 'web', image: web.image, env: { GREETING: 'a\nb' }, command: ['run', 'x\r'] },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().issues).toEqual([
      'body.spec.command[1]: newline not allowed',
      'body.spec.env.GREETING: newline not allowed',
    ]);
    expect(await api.prisma.serviceRevision.count({ where: { serviceName: 'web' } })).toBe(3);
  });

  it('shows a service with its latest revision and where it is assigned and pinned', async () => {
    await api.call('operator', 'POST', '/v1/groups', { name: 'edge', selector: 'tier=edge' });
    await api.call('operator', 'PUT', '/v1/groups/edge/services/web', { revision: 2 });
    const pin = `registry.example/acme/web@sha256:${'c'.repeat(64)}`;
    await api.call('operator', 'PUT', '/v1/pins', { group: 'edge', service: 'web', image: pin });
    const response = await api.call('viewer', 'GET', '/v1/services/web');
    expect(response.json()).toMatchObject({
      name: 'web',
      latest: { revision: 3, image: web.image },
      assignedTo: [{ group: 'edge', revision: 2 }],
      pins: [{ group: 'edge', device: null, image: pin }],
    });
    expect((await api.call('viewer', 'GET', '/v1/services/nope')).statusCode).toBe(404);
    expect((await api.call('viewer', 'GET', '/v1/services/web/revisions/9')).statusCode).toBe(404);
    expect((await api.call('viewer', 'GET', '/v1/services/nope/revisions')).statusCode).toBe(404);
  });

  it('lists services by name and revisions newest first, page by page', async () => {
    const services = await api.call('viewer', 'GET', '/v1/services?limit=1');
    expect(services.json().items.map((s: { name: string }) => s.name)).toEqual(['api']);
    const next = await api.call(
      'viewer',
      'GET',
      `/v1/services?limit=1&cursor=${services.json().nextCursor}`,
    );
    expect(next.json()).toMatchObject({ items: [{ name: 'web', latest: { revision: 3 } }] });
    expect(next.json().nextCursor).toBeNull();

    const revisions: number[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/services/api/revisions?limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await api.call('viewer', 'GET', url)).json();
      revisions.push(...page.items.map((r: { revision: number }) => r.revision));
      cursor = page.nextCursor;
    } while (cursor);
    expect(revisions).toEqual([4, 3, 2, 1]);
  });
});
