import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

const digest = (hex: string) => `registry.example/acme/web@sha256:${hex.repeat(64)}`;

describe('pins', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
    await api.prisma.device.create({ data: { id: 'pi-1', labels: {} } });
    await api.call('operator', 'POST', '/v1/groups', { name: 'edge', members: ['pi-1'] });
    await api.call('operator', 'POST', '/v1/services', {
      spec: { name: 'web', image: 'registry.example/acme/web:1' },
    });
    await api.call('operator', 'POST', '/v1/services', {
      spec: { name: 'api', image: 'registry.example/acme/api:1' },
    });
    api.fleet.take();
  });
  afterAll(async () => {
    await api?.close();
  });

  it('pins a group (201), replaces its pin (200), and tells the fleet each time', async () => {
    const first = await api.call('operator', 'PUT', '/v1/pins', {
      group: 'edge',
      service: 'web',
      image: digest('a'),
    });
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ group: 'edge', device: null, image: digest('a') });
    const second = await api.call('operator', 'PUT', '/v1/pins', {
      group: 'edge',
      service: 'web',
      image: digest('b'),
    });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({ id: first.json().id, image: digest('b') });
    expect(api.fleet.take()).toEqual(['group/edge: web pinned', 'group/edge: web pinned']);
    const audit = await api.prisma.auditEntry.findMany({
      where: { action: 'pin.set' },
      orderBy: { id: 'asc' },
    });
    expect(audit.map((row) => [row.actor, row.target, row.details])).toEqual([
      ['ci-operator', 'group/edge', { service: 'web', image: digest('a'), previous: null }],
      ['ci-operator', 'group/edge', { service: 'web', image: digest('b'), previous: digest('a') }],
    ]);
  });

  it.each([
    [
      'a tag',
      { group: 'edge', service: 'web', image: 'registry.example/acme/web:1' },
      'body.image: a pin must be an image by digest (repository@sha256:…)',
    ],
    [
      'both owners',
      { group: 'edge', device: 'pi-1', service: 'web', image: digest('a') },
      'body.device: give group or device, not both',
    ],
    ['no owner', { service: 'web', image: digest('a') }, 'body.group: give group or device'],
  ])('answers 400 for %s, naming the field', async (_, body, message) => {
    const response = await api.call('operator', 'PUT', '/v1/pins', body);
    expect(response.statusCode).toBe(400);
    expect(response.json().message).toBe(message);
  });

  it('answers 404 for an unknown group, device or service', async () => {
    for (const [body, message] of [
      [{ group: 'nope', service: 'web' }, 'group nope not found'],
      [{ device: 'nope', service: 'web' }, 'device nope not found'],
      [{ device: 'pi-1', service: 'nope' }, 'service nope not found'],
    ] as const) {
      const response = await api.call('operator', 'PUT', '/v1/pins', {
        ...body,
        image: digest('a'),
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().message).toBe(message);
    }
    expect(api.fleet.take()).toEqual([]);
  });

  it('lists pins with filters and deletes one by id', async () => {
    await api.call('operator', 'PUT', '/v1/pins', {
      device: 'pi-1',
      service: 'api',
      image: digest('c'),
    });
    api.fleet.take();
    const forDevice = await api.call('viewer', 'GET', '/v1/pins?device=pi-1');
    expect(forDevice.json().items).toMatchObject([{ device: 'pi-1', service: 'api' }]);
    const all = await api.call('viewer', 'GET', '/v1/pins?limit=1');
    expect(all.json().items).toHaveLength(1);
    const rest = await api.call(
      'viewer',
      'GET',
      `/v1/pins?limit=1&cursor=${all.json().nextCursor}`,
    );
    expect([...all.json().items, ...rest.json().items].map((p) => p.service)).toEqual([
      'web',
      'api',
    ]);

    const id = forDevice.json().items[0].id;
    expect((await api.call('operator', 'DELETE', `/v1/pins/${id}`)).statusCode).toBe(204);
    expect(api.fleet.take()).toEqual(['device/pi-1: api unpinned']);
    expect((await api.call('operator', 'DELETE', `/v1/pins/${id}`)).statusCode).toBe(404);
    expect((await api.call('operator', 'DELETE', '/v1/pins/not-a-uuid')).json().message).toBe(
      'params.id: Invalid UUID',
    );
  });
});
