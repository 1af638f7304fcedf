import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../auth/roles.js';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

const digest = `registry.example/acme/web@sha256:${'d'.repeat(64)}`;

interface Step {
  role: Role | undefined;
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string | (() => string);
  body?: object | (() => object);
  /** The audit row it writes (the actor is the role's token unless given). */
  action: string;
  target: string | (() => string);
  actor?: () => string;
  /** Whether it can change a device's manifest, so the fleet must hear of it. */
  fleet: boolean;
}

describe('the audit log and the fleet, for every change', () => {
  let api: ApiHarness;
  const ids: Record<string, string> = {};

  const steps: Step[] = [
    { role: 'operator', method: 'POST', url: '/v1/services', body: { spec: { name: 'web', image: 'registry.example/acme/web:1' } }, action: 'service.apply', target: 'service/web', fleet: false },
    { role: 'operator', method: 'POST', url: '/v1/groups', body: { name: 'edge', selector: 'tier=edge' }, action: 'group.create', target: 'group/edge', fleet: true },
    { role: 'operator', method: 'PATCH', url: '/v1/groups/edge', body: { priority: 5 }, action: 'group.update', target: 'group/edge', fleet: true },
    { role: 'operator', method: 'PUT', url: '/v1/groups/edge/members', body: { members: ['pi-1'] }, action: 'group.members', target: 'group/edge', fleet: true },
    { role: 'operator', method: 'PUT', url: '/v1/groups/edge/services/web', body: {}, action: 'assignment.set', target: 'group/edge', fleet: true },
    { role: 'operator', method: 'PUT', url: '/v1/pins', body: { device: 'pi-1', service: 'web', image: digest }, action: 'pin.set', target: 'device/pi-1', fleet: true },
    { role: 'operator', method: 'DELETE', url: () => `/v1/pins/${ids.pin}`, action: 'pin.delete', target: 'device/pi-1', fleet: true },
    { role: 'operator', method: 'PATCH', url: '/v1/devices/pi-1', body: { labels: { tier: 'edge' } }, action: 'device.label', target: 'device/pi-1', fleet: true },
    { role: 'operator', method: 'DELETE', url: '/v1/groups/edge/services/web', action: 'assignment.delete', target: 'group/edge', fleet: true },
    { role: 'operator', method: 'DELETE', url: '/v1/groups/edge', action: 'group.delete', target: 'group/edge', fleet: true },
    { role: 'admin', method: 'POST', url: '/v1/tokens', body: { name: 'robot', role: 'viewer' }, action: 'token.create', target: () => `token/${ids.token}`, fleet: false },
    { role: 'admin', method: 'DELETE', url: () => `/v1/tokens/${ids.token}`, action: 'token.revoke', target: () => `token/${ids.token}`, fleet: false },
    { role: 'admin', method: 'POST', url: '/v1/enrollment-tokens', body: { ttl: '5m' }, action: 'enrollment-token.create', target: () => `enrollment-token/${ids.enrollment}`, fleet: false },
    { role: undefined, method: 'POST', url: '/v1/enroll', body: () => ({ token: ids.enrollmentToken, device: 'pi-2' }), action: 'device.enroll', target: 'device/pi-2', actor: () => `enrollment-token/${ids.enrollment}`, fleet: true },
    { role: 'admin', method: 'DELETE', url: () => `/v1/enrollment-tokens/${ids.enrollment}`, action: 'enrollment-token.delete', target: () => `enrollment-token/${ids.enrollment}`, fleet: false },
    { role: 'admin', method: 'DELETE', url: '/v1/devices/pi-1', action: 'device.delete', target: 'device/pi-1', fleet: true },
  ]; // prettier-ignore

  beforeAll(async () => {
    api = await openApiHarness();
    await api.prisma.device.create({ data: { id: 'pi-1' } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it.each(steps.map((step) => [step.action, step] as const))(
    '%s writes one audit row with its actor, and tells the fleet when manifests may change',
    async (_, step) => {
      const before = await api.prisma.auditEntry.count();
      const url = typeof step.url === 'function' ? step.url() : step.url;
      const body = typeof step.body === 'function' ? step.body() : step.body;
      const response = await api.call(step.role, step.method, url, body);
      expect(response.statusCode, response.body).toBeLessThan(300);
      const json = response.body ? response.json() : {};
      if (step.action === 'pin.set') ids.pin = json.id;
      if (step.action === 'token.create') ids.token = json.id;
      if (step.action === 'enrollment-token.create') {
        ids.enrollment = json.id;
        ids.enrollmentToken = json.token;
      }

      const rows = await api.prisma.auditEntry.findMany({ orderBy: { id: 'asc' }, skip: before });
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        actor: step.actor ? step.actor() : `ci-${step.role}`,
        action: step.action,
        target: typeof step.target === 'function' ? step.target() : step.target,
      });
      expect(JSON.stringify(rows[0]!.details)).not.toMatch(/pf[te]_/);
      expect(api.fleet.take()).toHaveLength(step.fleet ? 1 : 0);
    },
  );

  it('writes no row for a refused change', async () => {
    const before = await api.prisma.auditEntry.count();
    await api.call('operator', 'POST', '/v1/groups', { name: 'x', selector: 'a in (' });
    await api.call('operator', 'DELETE', '/v1/groups/nope');
    await api.call('viewer', 'POST', '/v1/groups', { name: 'y' });
    expect(await api.prisma.auditEntry.count()).toBe(before);
    expect(api.fleet.take()).toEqual([]);
  });

  it('serves the log newest first to admins, page by page, filtered by target', async () => {
    expect((await api.call('operator', 'GET', '/v1/audit')).statusCode).toBe(403);
    const actions: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const url: string = `/v1/audit?limit=5${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await api.call('admin', 'GET', url)).json();
      actions.push(...page.items.map((entry: { action: string }) => entry.action));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(4);
    expect(actions).toEqual(steps.map((step) => step.action).reverse());

    const group = await api.call('admin', 'GET', '/v1/audit?target=group/edge&action=group.delete');
    expect(group.json().items).toMatchObject([
      { actor: 'ci-operator', details: { force: false, assignments: [], pins: [] } },
    ]);
  });
});
