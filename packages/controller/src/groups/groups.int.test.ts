import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

const spec = (name: string, tag = '1') => ({ name, image: `registry.example/acme/${name}:${tag}` });
const digest = (name: string) => `registry.example/acme/${name}@sha256:${'b'.repeat(64)}`;

describe('groups', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
    await api.prisma.device.createMany({
      data: [
        { id: 'ber-1', labels: { site: 'berlin', tier: 'edge' } },
        { id: 'ber-2', labels: { site: 'berlin', tier: 'gw' } },
        { id: 'par-1', labels: { site: 'paris', tier: 'edge' } },
        { id: 'lab-1', labels: { canary: '' } },
      ],
    });
    await api.call('operator', 'POST', '/v1/services', { spec: spec('web') });
    await api.call('operator', 'POST', '/v1/services', { spec: spec('web', '2') });
    api.fleet.take();
  });
  afterAll(async () => {
    await api?.close();
  });

  it('creates a group with a canonical selector and lists the devices that match now', async () => {
    const created = await api.call('operator', 'POST', '/v1/groups', {
      name: 'berlin',
      selector: 'tier in (gw, edge),  site=berlin',
      priority: 10,
      members: ['lab-1'],
    });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      name: 'berlin',
      selector: 'site=berlin,tier in (edge,gw)',
      priority: 10,
      members: ['lab-1'],
      services: [],
      pins: [],
    });
    expect(api.fleet.take()).toEqual(['group/berlin: created']);

    const read = await api.call('viewer', 'GET', '/v1/groups/berlin');
    expect(read.json().devices).toEqual(['ber-1', 'ber-2', 'lab-1']);
    expect(api.fleet.take()).toEqual([]);
  });

  it('answers 400 naming the selector field and the position of the mistake', async () => {
    const response = await api.call('operator', 'POST', '/v1/groups', {
      name: 'bad',
      selector: 'site=berlin,tier in (edge gw)',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: 'Bad Request',
      message: "body.selector: expected ',' or ')' at 27",
      issues: ["body.selector: expected ',' or ')' at 27"],
    });
  });

  it('answers 409 for a name that exists and 404 naming an unknown member', async () => {
    const duplicate = await api.call('operator', 'POST', '/v1/groups', { name: 'berlin' });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json()).toEqual({ error: 'Conflict', message: 'group berlin exists' });

    const unknown = await api.call('operator', 'POST', '/v1/groups', {
      name: 'ghosts',
      members: ['ber-1', 'nobody'],
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({
      error: 'Not Found',
      message: 'device nobody not found',
      issues: ['body.members[1]: device nobody not found'],
    });
    expect((await api.call('viewer', 'GET', '/v1/groups/ghosts')).statusCode).toBe(404);
    expect(api.fleet.take()).toEqual([]);
  });

  it('creates one group of a name when several ask at once; the others get 409', async () => {
    const responses = await Promise.all(
      Array.from({ length: 5 }, () =>
        api.call('operator', 'POST', '/v1/groups', { name: 'race', selector: 'site=x' }),
      ),
    );
    const codes = responses.map((response) => response.statusCode).sort();
    expect(codes).toEqual([201, 409, 409, 409, 409]);
    for (const response of responses.filter((r) => r.statusCode === 409)) {
      expect(response.json().message).toMatch(
        /^(group race exists|a concurrent change came first; retry)$/,
      );
    }
    expect(await api.prisma.auditEntry.count({ where: { target: 'group/race' } })).toBe(1);
    expect(api.fleet.take()).toEqual(['group/race: created']);
    await api.call('operator', 'DELETE', '/v1/groups/race');
    api.fleet.take();
  });

  it('changes selector, priority and explicit members', async () => {
    const patched = await api.call('operator', 'PATCH', '/v1/groups/berlin', {
      selector: null,
      priority: 20,
    });
    expect(patched.json()).toMatchObject({ selector: null, priority: 20 });
    const members = await api.call('operator', 'PUT', '/v1/groups/berlin/members', {
      members: ['par-1', 'ber-2', 'par-1'],
    });
    expect(members.json().members).toEqual(['ber-2', 'par-1']);
    expect((await api.call('viewer', 'GET', '/v1/groups/berlin')).json().devices).toEqual([
      'ber-2',
      'par-1',
    ]);
    expect(api.fleet.take()).toEqual(['group/berlin: updated', 'group/berlin: members']);
    const audit = await api.prisma.auditEntry.findMany({
      where: { action: 'group.members' },
    });
    expect(audit.map((row) => row.details)).toEqual([
      { added: ['par-1', 'ber-2'], removed: ['lab-1'] },
    ]);
  });

  it('assigns a revision, the latest by default, and 404s an unknown revision', async () => {
    const latest = await api.call('operator', 'PUT', '/v1/groups/berlin/services/web', {});
    expect(latest.json()).toMatchObject({ group: 'berlin', service: 'web', revision: 2 });
    const first = await api.call('operator', 'PUT', '/v1/groups/berlin/services/web', {
      revision: 1,
    });
    expect(first.json()).toMatchObject({ revision: 1 });
    const unknown = await api.call('operator', 'PUT', '/v1/groups/berlin/services/web', {
      revision: 9,
    });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().message).toBe('service web revision 9 not found');
    const noService = await api.call('operator', 'PUT', '/v1/groups/berlin/services/api', {});
    expect(noService.json().message).toBe('service api not found');
    expect(api.fleet.take()).toEqual([
      'group/berlin: web revision 2',
      'group/berlin: web revision 1',
    ]);
    expect((await api.call('viewer', 'GET', '/v1/groups/berlin')).json().services).toEqual([
      { service: 'web', revision: 1 },
    ]);
  });

  it('refuses to delete a group that still assigns or pins, unless forced', async () => {
    await api.call('operator', 'PUT', '/v1/pins', {
      group: 'berlin',
      service: 'web',
      image: digest('web'),
    });
    api.fleet.take();
    const refused = await api.call('operator', 'DELETE', '/v1/groups/berlin');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().message).toBe(
      'group berlin still assigns web and pins web; remove them first or pass force=true',
    );
    expect(api.fleet.take()).toEqual([]);

    const forced = await api.call('operator', 'DELETE', '/v1/groups/berlin?force=true');
    expect(forced.statusCode).toBe(204);
    expect(api.fleet.take()).toEqual(['group/berlin: deleted']);
    expect(await api.prisma.pin.count()).toBe(0);
    expect(await api.prisma.assignment.count()).toBe(0);
    expect((await api.call('operator', 'DELETE', '/v1/groups/berlin')).statusCode).toBe(404);
  });

  it('unassigns, and 404s an assignment that is not there', async () => {
    await api.call('operator', 'POST', '/v1/groups', { name: 'paris', selector: 'site=paris' });
    await api.call('operator', 'PUT', '/v1/groups/paris/services/web', {});
    api.fleet.take();
    expect((await api.call('operator', 'DELETE', '/v1/groups/paris/services/web')).statusCode).toBe(
      204,
    );
    const again = await api.call('operator', 'DELETE', '/v1/groups/paris/services/web');
    expect(again.statusCode).toBe(404);
    expect(again.json().message).toBe('assignment of web to group paris not found');
    expect(api.fleet.take()).toEqual(['group/paris: web unassigned']);
  });
});
