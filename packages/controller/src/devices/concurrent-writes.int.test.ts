import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

const WRITERS = 24;

// Many operators (or scripts) editing one device at once, against real Postgres: every write
// answered 200 is kept, and the audit log says exactly what was written.
describe('concurrent device writes', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
  });
  afterAll(async () => {
    await api?.close();
  });

  const labelAudits = (id: string) =>
    api.prisma.auditEntry.findMany({
      where: { action: 'device.label', target: `device/${id}` },
      orderBy: { id: 'asc' },
    });

  it(`keeps every label of ${WRITERS} concurrent PATCHes, each with its audit row`, async () => {
    await api.prisma.device.create({ data: { id: 'busy-1', labels: { keep: 'yes', gone: 'x' } } });
    const answers = await Promise.all(
      Array.from({ length: WRITERS }, (_, i) =>
        api.call('operator', 'PATCH', '/v1/devices/busy-1', {
          labels: { [`label-${i}`]: `value-${i}`, ...(i === 0 ? { gone: null } : {}) },
        }),
      ),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual(Array(WRITERS).fill(200));
    const expected: Record<string, string> = { keep: 'yes' };
    for (let i = 0; i < WRITERS; i++) expected[`label-${i}`] = `value-${i}`;
    const stored = await api.prisma.device.findUniqueOrThrow({ where: { id: 'busy-1' } });
    expect(stored.labels).toEqual(expected);
    const audits = await labelAudits('busy-1');
    expect(audits.map((row) => row.details).sort(byJson)).toEqual(
      Array.from({ length: WRITERS }, (_, i) => ({
        labels: { [`label-${i}`]: `value-${i}`, ...(i === 0 ? { gone: null } : {}) },
      })).sort(byJson),
    );
  });

  it('sets and removes the same label from many writers: the last committed write decides', async () => {
    await api.prisma.device.create({ data: { id: 'busy-2', labels: {} } });
    const answers = await Promise.all(
      Array.from({ length: WRITERS }, (_, i) =>
        api.call('operator', 'PATCH', '/v1/devices/busy-2', {
          labels: { flag: i % 2 === 0 ? `set-${i}` : null, [`own-${i}`]: 'x' },
        }),
      ),
    );
    expect(answers.every((answer) => answer.statusCode === 200)).toBe(true);
    const audits = await labelAudits('busy-2');
    expect(audits).toHaveLength(WRITERS);
    // Audit rows are written in commit order (each in its change's transaction, after its update).
    const last = (audits.at(-1)!.details as { labels: { flag: string | null } }).labels.flag;
    const stored = (await api.prisma.device.findUniqueOrThrow({ where: { id: 'busy-2' } }))
      .labels as Record<string, string>;
    expect(stored.flag ?? null).toBe(last);
    expect(Object.keys(stored).filter((key) => key.startsWith('own-'))).toHaveLength(WRITERS);
  });

  it(`keeps every label of ${WRITERS} concurrent identity reissues`, async () => {
    await api.prisma.device.create({ data: { id: 'busy-3', labels: { keep: 'yes' } } });
    const answers = await Promise.all(
      Array.from({ length: WRITERS }, (_, i) =>
        api.call('admin', 'POST', '/v1/devices/busy-3/identity', {
          reissue: true,
          labels: { [`label-${i}`]: `value-${i}` },
        }),
      ),
    );
    expect(answers.map((answer) => answer.statusCode)).toEqual(Array(WRITERS).fill(201));
    const stored = await api.prisma.device.findUniqueOrThrow({ where: { id: 'busy-3' } });
    expect(Object.keys(stored.labels as object)).toHaveLength(WRITERS + 1);
  });

  it('answers 404, never 500, to PATCHes racing the device’s deletion', async () => {
    for (let round = 0; round < 5; round++) {
      const id = `doomed-${round}`;
      await api.prisma.device.create({ data: { id, labels: {} } });
      const patches = Array.from({ length: 10 }, (_, i) =>
        api.call('operator', 'PATCH', `/v1/devices/${id}`, { labels: { [`l${i}`]: 'v' } }),
      );
      const deletion = api.call('admin', 'DELETE', `/v1/devices/${id}`);
      const answers = await Promise.all(patches);
      expect((await deletion).statusCode).toBe(204);
      for (const answer of answers) {
        expect([200, 404], answer.body).toContain(answer.statusCode);
        if (answer.statusCode === 404) expect(answer.json().message).toBe(`device ${id} not found`);
      }
      expect(await api.prisma.device.count({ where: { id } })).toBe(0);
    }
  });
});

const byJson = (a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1);
