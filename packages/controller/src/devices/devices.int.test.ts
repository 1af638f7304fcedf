import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matchesSelector, parseSelector, type DesiredState } from '../desired/index.js';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

const devices: { id: string; labels: Record<string, string> }[] = [
  { id: 'ber-1', labels: { site: 'berlin', tier: 'edge' } },
  { id: 'ber-2', labels: { site: 'berlin', tier: 'gw', canary: '' } },
  { id: 'par-1', labels: { site: 'paris', tier: 'edge' } },
  { id: 'par-2', labels: { site: 'paris' } },
  { id: 'lab-1', labels: { 'example.com/role': 'lab' } },
  { id: 'odd-1', labels: { constructor: 'x', site: "o'brien" } },
];

const ids = (response: { json(): { items: { id: string }[] } }) =>
  response.json().items.map((device) => device.id);

describe('devices', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
    await api.prisma.device.createMany({
      data: devices.map((device) => ({ ...device, online: device.id.startsWith('ber') })),
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  it.each([
    'site=berlin',
    'site!=berlin',
    'tier in (edge,gw)',
    'tier notin (edge)',
    'canary',
    '!canary',
    'site=paris,!tier',
    'example.com/role=lab',
    'constructor',
    'site=',
    '',
  ])('filters by selector %j exactly as matchesSelector decides', async (selector) => {
    const parsed = parseSelector(selector);
    if (!parsed.ok) throw new Error(parsed.error);
    const expected = devices
      .filter((device) => matchesSelector(parsed.selector, device.labels))
      .map((device) => device.id)
      .sort();
    const response = await api.call(
      'viewer',
      'GET',
      `/v1/devices?selector=${encodeURIComponent(selector)}`,
    );
    expect(response.statusCode).toBe(200);
    expect(ids(response)).toEqual(expected);
  });

  it('filters by liveness and by group (selected or listed)', async () => {
    expect(ids(await api.call('viewer', 'GET', '/v1/devices?online=true'))).toEqual([
      'ber-1',
      'ber-2',
    ]);
    await api.call('operator', 'POST', '/v1/groups', {
      name: 'edge',
      selector: 'tier=edge',
      members: ['lab-1'],
    });
    expect(ids(await api.call('viewer', 'GET', '/v1/devices?group=edge&online=false'))).toEqual([
      'lab-1',
      'par-1',
    ]);
    expect((await api.call('viewer', 'GET', '/v1/devices?group=nope')).statusCode).toBe(404);
    const bad = await api.call('viewer', 'GET', '/v1/devices?selector=site%3D%3Dx%2C(');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe('querystring.selector: expected key at 9');
    api.fleet.take();
  });

  it('shows a device with the groups it is in and its pins', async () => {
    const response = await api.call('viewer', 'GET', '/v1/devices/par-1');
    expect(response.json()).toMatchObject({
      id: 'par-1',
      labels: { site: 'paris', tier: 'edge' },
      online: false,
      groups: ['edge'],
      pins: [],
      lastState: null,
      desiredGeneration: 0,
    });
    expect((await api.call('viewer', 'GET', '/v1/devices/nope')).statusCode).toBe(404);
    const bad = await api.call('viewer', 'GET', '/v1/devices/a%2Fb');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^params\.id: must match/);
  });

  it('sets and removes labels as a merge patch, and tells the fleet', async () => {
    const response = await api.call('operator', 'PATCH', '/v1/devices/par-1', {
      labels: { tier: null, rack: 'r7' },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toMatchObject({
      labels: { site: 'paris', rack: 'r7' },
      groups: [],
    });
    expect(api.fleet.take()).toEqual(['device/par-1: labels']);
    const bad = await api.call('operator', 'PATCH', '/v1/devices/par-1', {
      labels: { rack: 'not ok' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe(
      'body.labels.rack: value must be alphanumeric at both ends, with -, _ or . inside',
    );
    const missing = await api.call('operator', 'PATCH', '/v1/devices/nope', { labels: {} });
    expect(missing.statusCode).toBe(404);
    expect(api.fleet.take()).toEqual([]);
  });

  it('gives the stored manifest and the explanation of the fleet', async () => {
    const manifest = { device: 'ber-1', generation: 3, services: [] };
    await api.prisma.device.update({
      where: { id: 'ber-1' },
      data: { desiredGeneration: 3, appliedGeneration: 2, desiredManifest: manifest },
    });
    const explanation: DesiredState = {
      device: 'ber-1',
      services: [],
      resolutions: [],
      conflicts: [
        {
          service: 'web',
          kind: 'revision',
          priority: 0,
          claims: [
            { group: 'a', priority: 0, revision: 1 },
            { group: 'b', priority: 0, revision: 2 },
          ],
          message:
            'web: groups of priority 0 assign different revisions: a (revision 1), b (revision 2)',
        },
      ],
    };
    api.fleet.explanations.set('ber-1', explanation);
    const response = await api.call('viewer', 'GET', '/v1/devices/ber-1/manifest');
    expect(response.json()).toEqual({
      device: 'ber-1',
      desiredGeneration: 3,
      appliedGeneration: 2,
      manifest,
      explanation,
    });
    const none = await api.call('viewer', 'GET', '/v1/devices/par-2/manifest');
    expect(none.json()).toMatchObject({ manifest: null, explanation: null });
    expect((await api.call('viewer', 'GET', '/v1/devices/nope/manifest')).statusCode).toBe(404);
    expect(api.fleet.take()).toEqual([]);
  });

  it("lists a device's events newest received first", async () => {
    const at = (second: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, second));
    await api.prisma.deviceEvent.createMany({
      data: [1, 2, 3].map((second) => ({
        id: randomUUID(),
        deviceId: 'ber-2',
        type: 'apply',
        at: at(second),
        receivedAt: at(second),
        payload: { second },
      })),
    });
    const response = await api.call('viewer', 'GET', '/v1/devices/ber-2/events?limit=2');
    expect(response.json().items.map((e: { payload: object }) => e.payload)).toEqual([
      { second: 3 },
      { second: 2 },
    ]);
    expect(response.json().nextCursor).toEqual(expect.any(String));
    expect((await api.call('viewer', 'GET', '/v1/devices/nope/events')).statusCode).toBe(404);
  });

  it('deletes a device (admin) with its memberships and events, and tells the fleet', async () => {
    expect((await api.call('operator', 'DELETE', '/v1/devices/ber-2')).statusCode).toBe(403);
    const response = await api.call('admin', 'DELETE', '/v1/devices/ber-2');
    expect(response.statusCode).toBe(204);
    expect(response.body).toBe('');
    expect(await api.prisma.deviceEvent.count({ where: { deviceId: 'ber-2' } })).toBe(0);
    expect(api.fleet.take()).toEqual(['device/ber-2: deleted']);
    expect(api.fleet.forgotten).toEqual(['ber-2']);
    expect((await api.call('admin', 'DELETE', '/v1/devices/ber-2')).statusCode).toBe(404);
    expect(api.fleet.take()).toEqual([]);
  });

  it('registers a device ahead of its agent (admin), once, naming a bad label', async () => {
    const body = { id: 'new-1', labels: { site: 'oslo' } };
    expect((await api.call('operator', 'POST', '/v1/devices', body)).statusCode).toBe(403);
    const created = await api.call('admin', 'POST', '/v1/devices', body);
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: 'new-1', labels: { site: 'oslo' }, online: false });
    expect(api.fleet.take()).toEqual(['device/new-1: registered']);
    const again = await api.call('admin', 'POST', '/v1/devices', body);
    expect(again.statusCode).toBe(409);
    expect(again.json().message).toBe('device new-1 exists');
    const bad = await api.call('admin', 'POST', '/v1/devices', { id: 'new/2', labels: {} });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().issues[0]).toMatch(/^body\.id: /);
  });

  it('pages through every device, more than two pages, none twice', async () => {
    await api.prisma.device.createMany({
      data: Array.from({ length: 23 }, (_, index) => ({
        id: `bulk-${String(index).padStart(2, '0')}`,
        labels: { bulk: 'yes' },
      })),
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/devices?selector=bulk&limit=5${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await api.call('viewer', 'GET', url);
      seen.push(...ids(page));
      cursor = page.json().nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(5);
    expect(seen).toEqual(
      Array.from({ length: 23 }, (_, i) => `bulk-${String(i).padStart(2, '0')}`),
    );
    const bad = await api.call('viewer', 'GET', '/v1/devices?cursor=garbage');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/^querystring\.cursor: not a cursor of this list/);
  });
});
