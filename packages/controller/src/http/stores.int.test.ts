import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness, type StoreKind } from './route-testing.js';

const digest = `registry.example/acme/web@sha256:${'e'.repeat(64)}`;

// The same walk through the API on both stores openDatabase gives: every query the routes make
// (raw selector SQL, row locks, advisory locks, keyset pages) must work on the embedded one too.
describe.each<StoreKind>(['postgres', 'embedded'])('the API on the %s store', (store) => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness({ store, enroll: { rateLimit: { limit: 100, windowMs: 60_000 } } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('is the store asked for', () => {
    expect(api.db.kind).toBe(store);
  });

  it('enrolls devices with one-time tokens', async () => {
    for (let i = 0; i < 7; i++) {
      const { token } = (
        await api.call('admin', 'POST', '/v1/enrollment-tokens', {
          ttl: '1h',
          labels: { site: i < 4 ? 'berlin' : 'paris' },
        })
      ).json();
      const enrolled = await api.app.inject({
        method: 'POST',
        url: '/v1/enroll',
        payload: { token, device: `pi-${i}` },
      });
      expect(enrolled.statusCode).toBe(201);
      expect((await api.app.inject({ method: 'POST', url: '/v1/enroll', payload: { token, device: 'x' } })).statusCode).toBe(401); // prettier-ignore
    }
  });

  it('stores revisions, concurrent applies included', async () => {
    const applies = await Promise.all(
      ['1', '2', '3'].map((tag) =>
        api.call('operator', 'POST', '/v1/services', {
          spec: { name: 'web', image: `registry.example/acme/web:${tag}` },
        }),
      ),
    );
    expect(applies.map((r) => r.json().revision).sort()).toEqual([1, 2, 3]);
    const latest = applies.map((r) => r.json()).find((applied) => applied.revision === 3);
    const same = await api.call('operator', 'POST', '/v1/services', { spec: latest.spec });
    expect(same.statusCode).toBe(200);
  });

  it('selects devices by label, group and page', async () => {
    expect(
      (await api.call('operator', 'POST', '/v1/groups', { name: 'berlin', selector: 'site=berlin', members: ['pi-6'] })).statusCode,
    ).toBe(201); // prettier-ignore
    expect(
      (await api.call('operator', 'PUT', '/v1/groups/berlin/services/web', {})).statusCode,
    ).toBe(200);
    expect((await api.call('operator', 'PUT', '/v1/pins', { group: 'berlin', service: 'web', image: digest })).statusCode).toBe(201); // prettier-ignore
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/devices?group=berlin&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await api.call('viewer', 'GET', url)).json();
      seen.push(...page.items.map((d: { id: string }) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['pi-0', 'pi-1', 'pi-2', 'pi-3', 'pi-6']);
    const paris = await api.call('viewer', 'GET', '/v1/devices?selector=site%20notin%20(berlin)');
    expect(paris.json().items.map((d: { id: string }) => d.id)).toEqual(['pi-4', 'pi-5', 'pi-6']);
    expect((await api.call('viewer', 'GET', '/v1/devices/pi-6')).json().groups).toEqual(['berlin']);
  });

  it('judges compliance from manifests, reports and events, and filters and pages by it', async () => {
    const web = (image: string) => ({ name: 'web', image, unit: { active: 'active', sub: 'running', restarts: 0 }, ready: true, health: 'ready' }); // prettier-ignore
    const v18 = 'registry.example/acme/web:1.8';
    const device = (id: string, runs: string) => ({
      id,
      online: true,
      desiredGeneration: 3,
      appliedGeneration: 3,
      desiredManifest: { device: id, generation: 3, services: [{ name: 'web', image: v18 }] },
      lastState: { device: id, generation: 3, services: [web(runs)] },
    });
    await api.prisma.device.createMany({
      data: [
        device('cx-1', v18),
        device('cx-2', 'registry.example/acme/web:1.4'),
        device('cx-3', 'registry.example/acme/web:1.4'),
      ],
    });
    await api.prisma.deviceEvent.createMany({
      data: ['cx-2', 'cx-3'].map((deviceId) => ({
        id: randomUUID(),
        deviceId,
        type: 'apply',
        at: new Date(),
        payload: { type: 'apply', generation: 3, result: 'failed', services: [], failure: { reason: 'pull-failed', journal: [] } }, // prettier-ignore
      })),
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/devices?compliance=failed&limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await api.call('viewer', 'GET', url)).json();
      seen.push(...page.items.map((d: { id: string }) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['cx-2', 'cx-3']);
    const failed = (await api.call('viewer', 'GET', '/v1/devices/cx-2')).json().compliance;
    expect(failed.services[0]).toMatchObject({
      state: 'failed',
      failure: { reason: 'pull-failed' },
    });
    const synced = await api.call('viewer', 'GET', '/v1/devices?compliance=in-sync');
    expect(synced.json().items.map((d: { id: string }) => d.id)).toEqual(['cx-1']);
    const bogus = await api.call('viewer', 'GET', '/v1/devices?compliance=converged');
    expect(bogus.statusCode).toBe(400);
    expect(bogus.json().message).toMatch(/^querystring\.compliance: /);
    // Their events would count in the walk through events below.
    await api.prisma.device.deleteMany({ where: { id: { startsWith: 'cx-' } } });
  });

  it('pages events and the audit log', async () => {
    await api.prisma.deviceEvent.createMany({
      data: Array.from({ length: 5 }, () => ({
        id: randomUUID(),
        deviceId: 'pi-0',
        type: 'apply',
        at: new Date(Date.UTC(2026, 0, 1)),
        payload: {},
      })),
    });
    const first = (await api.call('viewer', 'GET', '/v1/events?limit=2')).json();
    const second = (await api.call('viewer', 'GET', `/v1/events?limit=2&cursor=${first.nextCursor}`)).json(); // prettier-ignore
    const third = (await api.call('viewer', 'GET', `/v1/events?limit=2&cursor=${second.nextCursor}`)).json(); // prettier-ignore
    const ids = [...first.items, ...second.items, ...third.items].map((e: { id: string }) => e.id);
    expect(new Set(ids).size).toBe(5);
    expect(third.nextCursor).toBeNull();
    const audit = (await api.call('admin', 'GET', '/v1/audit?limit=100')).json();
    expect(audit.items.length).toBeGreaterThanOrEqual(20);
  });

  it('edits labels, members and pins under the same row locks', async () => {
    const patched = await api.call('operator', 'PATCH', '/v1/devices/pi-1', {
      labels: { rack: '7', site: null },
    });
    expect(patched.statusCode).toBe(200);
    expect(patched.json().labels).toEqual({ rack: '7' });
    expect((await api.call('operator', 'PATCH', '/v1/devices/nope', { labels: {} })).statusCode).toBe(404); // prettier-ignore
    expect((await api.call('operator', 'PUT', '/v1/groups/berlin/members', { members: ['pi-1'] })).statusCode).toBe(200); // prettier-ignore
    const pinned = await api.call('operator', 'PUT', '/v1/pins', { device: 'pi-1', service: 'web', image: digest }); // prettier-ignore
    expect(pinned.statusCode).toBe(201);
    expect((await api.call('operator', 'DELETE', `/v1/pins/${pinned.json().id}`)).statusCode).toBe(204); // prettier-ignore
    expect((await api.call('operator', 'DELETE', `/v1/pins/${pinned.json().id}`)).statusCode).toBe(404); // prettier-ignore
  });

  it('revokes a token at once and deletes what it is told to', async () => {
    const issued = (await api.call('admin', 'POST', '/v1/tokens', { name: 'temp', role: 'viewer' })).json(); // prettier-ignore
    await api.call('admin', 'DELETE', `/v1/tokens/${issued.id}`);
    const refused = await api.app.inject({
      url: '/v1/devices',
      headers: { authorization: `Bearer ${issued.token}` },
    });
    expect(refused.statusCode).toBe(401);
    expect((await api.call('operator', 'DELETE', '/v1/groups/berlin')).statusCode).toBe(409);
    expect((await api.call('operator', 'DELETE', '/v1/groups/berlin?force=true')).statusCode).toBe(
      204,
    );
    expect((await api.call('admin', 'DELETE', '/v1/devices/pi-0')).statusCode).toBe(204);
    expect(api.fleet.reasons.length).toBeGreaterThan(0);
  });
});
