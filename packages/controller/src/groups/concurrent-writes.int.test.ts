import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

const WRITERS = 20;
const DIGEST = (n: number) => `registry.example/web@sha256:${n.toString(16).padStart(64, '0')}`;

// Operators changing one group's members, assignments and pins at once, against real Postgres:
// each change takes its turn, so every audit row says what it replaced and the last one is what
// is stored.
describe('concurrent group writes', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
    await api.prisma.device.createMany({
      data: Array.from({ length: WRITERS + 1 }, (_, i) => ({ id: `d-${i}` })),
    });
    for (let i = 1; i <= WRITERS; i++) {
      const applied = await api.call('operator', 'POST', '/v1/services', {
        spec: { name: 'web', image: `registry.example/web:${i}` },
      });
      expect(applied.statusCode).toBe(201);
    }
  });
  afterAll(async () => {
    await api?.close();
  });

  const audits = (action: string, target: string) =>
    api.prisma.auditEntry.findMany({ where: { action, target }, orderBy: { id: 'asc' } });

  it(`replays ${WRITERS} concurrent member replacements from their audit rows`, async () => {
    expect((await api.call('operator', 'POST', '/v1/groups', { name: 'crowd' })).statusCode).toBe(
      201,
    );
    // Writer i lists devices i and i+1: each replacement adds and removes something.
    const answers = await Promise.all(
      Array.from({ length: WRITERS }, (_, i) =>
        api.call('operator', 'PUT', '/v1/groups/crowd/members', {
          members: [`d-${i}`, `d-${i + 1}`],
        }),
      ),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual(Array(WRITERS).fill(200));
    const members = new Set<string>();
    for (const row of await audits('group.members', 'group/crowd')) {
      const { added, removed } = row.details as { added: string[]; removed: string[] };
      for (const id of removed) expect(members.delete(id), `${id} removed`).toBe(true);
      for (const id of added) {
        expect(members.has(id), `${id} added`).toBe(false);
        members.add(id);
      }
    }
    const stored = await api.prisma.groupMember.findMany({ where: { groupName: 'crowd' } });
    expect(stored.map((row) => row.deviceId).sort()).toEqual([...members].sort());
  });

  it(`chains ${WRITERS} concurrent assignments: each audit row names the one it replaced`, async () => {
    await api.call('operator', 'POST', '/v1/groups', { name: 'assigned' });
    const answers = await Promise.all(
      Array.from({ length: WRITERS }, (_, i) =>
        api.call('operator', 'PUT', '/v1/groups/assigned/services/web', { revision: i + 1 }),
      ),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual(Array(WRITERS).fill(200));
    const rows = (await audits('assignment.set', 'group/assigned')).map(
      (row) => row.details as { revision: number; previous: number | null },
    );
    expect(rows).toHaveLength(WRITERS);
    expect(rows.map((row) => row.previous)).toEqual([
      null,
      ...rows.slice(0, -1).map((row) => row.revision),
    ]);
    const stored = await api.prisma.assignment.findUniqueOrThrow({
      where: { groupName_serviceName: { groupName: 'assigned', serviceName: 'web' } },
    });
    expect(stored.revision).toBe(rows.at(-1)!.revision);
  });

  it.each(['group', 'device'] as const)(
    `chains ${WRITERS} concurrent pins of one %s's service, and deletes a pin once`,
    async (owner) => {
      const name = owner === 'group' ? 'pinned' : 'd-0';
      if (owner === 'group') await api.call('operator', 'POST', '/v1/groups', { name });
      const answers = await Promise.all(
        Array.from({ length: WRITERS }, (_, i) =>
          api.call('operator', 'PUT', '/v1/pins', {
            [owner]: name,
            service: 'web',
            image: DIGEST(i),
          }),
        ),
      );
      expect(answers.map((answer) => answer.statusCode).sort()).toEqual([
        ...Array(WRITERS - 1).fill(200),
        201,
      ]);
      const rows = (await audits('pin.set', `${owner}/${name}`)).map(
        (row) => row.details as { image: string; previous: string | null },
      );
      expect(rows.map((row) => row.previous)).toEqual([
        null,
        ...rows.slice(0, -1).map((row) => row.image),
      ]);
      const [pin, ...others] = await api.prisma.pin
        .findMany({ where: { serviceName: 'web' } })
        .then((pins) =>
          pins.filter((p) => (owner === 'group' ? p.groupName : p.deviceId) === name),
        );
      expect(others).toEqual([]);
      expect(pin!.image).toBe(rows.at(-1)!.image);

      const deletions = await Promise.all(
        Array.from({ length: 10 }, () => api.call('operator', 'DELETE', `/v1/pins/${pin!.id}`)),
      );
      expect(deletions.map((answer) => answer.statusCode).sort()).toEqual([
        204,
        ...Array(9).fill(404),
      ]);
      expect(await audits('pin.delete', `${owner}/${name}`)).toHaveLength(1);
    },
  );

  it('never deletes an unforced group that an assignment racing it gave a service', async () => {
    for (let round = 0; round < 8; round++) {
      const name = `racing-${round}`;
      await api.call('operator', 'POST', '/v1/groups', { name });
      const assigning = Array.from({ length: 4 }, (_, i) =>
        api.call('operator', 'PUT', `/v1/groups/${name}/services/web`, { revision: i + 1 }),
      );
      const deleting = api.call('operator', 'DELETE', `/v1/groups/${name}`);
      const assigned = (await Promise.all(assigning)).map((answer) => answer.statusCode);
      const deleted = (await deleting).statusCode;
      if (deleted === 204) {
        // Every assignment came after the deletion: none may have been answered 200.
        expect(assigned).toEqual(Array(4).fill(404));
        const row = await api.prisma.auditEntry.findFirstOrThrow({
          where: { action: 'group.delete', target: `group/${name}` },
        });
        expect(row.details).toMatchObject({ assignments: [] });
      } else {
        expect(deleted).toBe(409);
        expect(assigned.filter((status) => status === 200).length).toBeGreaterThan(0);
        expect(await api.prisma.group.count({ where: { name } })).toBe(1);
      }
    }
  });
});
