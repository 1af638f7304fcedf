import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';
import { absorbRollout } from './absorb.js';

const ROLLOUTS = 6;
const APPLIES = 14;

// A rollout that succeeds while operators apply specs and assign revisions: revision numbers are
// taken once, and nothing fails for having raced.
describe('absorbing a rollout beside concurrent writers', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
    await api.call('operator', 'POST', '/v1/services', {
      spec: { name: 'web', image: 'registry.example/web:1' },
    });
    await api.call('operator', 'POST', '/v1/groups', { name: 'edge' });
    await api.call('operator', 'PUT', '/v1/groups/edge/services/web', {});
  });
  afterAll(async () => {
    await api?.close();
  });

  it(`numbers revisions once across ${ROLLOUTS} absorbs and ${APPLIES} applies`, async () => {
    const rollouts = await Promise.all(
      Array.from({ length: ROLLOUTS }, (_, i) =>
        api.prisma.rollout.create({
          data: {
            service: 'web',
            spec: {},
            targetImage: `registry.example/web:rollout-${i}`,
            batchCount: 1,
            createdBy: 'test',
          },
        }),
      ),
    );
    const absorbs = rollouts.map((rollout) =>
      api.prisma.$transaction((tx) =>
        absorbRollout(tx, {
          id: rollout.id,
          service: 'web',
          targetImage: rollout.targetImage,
          spec: { targets: { groups: ['edge'] }, overridePins: [] },
        }),
      ),
    );
    const applies = Array.from({ length: APPLIES }, (_, i) =>
      api.call('operator', 'POST', '/v1/services', {
        spec: { name: 'web', image: `registry.example/web:apply-${i}` },
      }),
    );
    expect(await Promise.all(absorbs)).toEqual(Array(ROLLOUTS).fill(true));
    expect((await Promise.all(applies)).map((answer) => answer.statusCode)).toEqual(
      Array(APPLIES).fill(201),
    );
    const revisions = await api.prisma.serviceRevision.findMany({
      where: { serviceName: 'web' },
      orderBy: { revision: 'asc' },
    });
    expect(revisions.map((row) => row.revision)).toEqual(
      Array.from({ length: 1 + ROLLOUTS + APPLIES }, (_, i) => i + 1),
    );
    const assignment = await api.prisma.assignment.findUniqueOrThrow({
      where: { groupName_serviceName: { groupName: 'edge', serviceName: 'web' } },
    });
    // The last absorb to take the lock decided the assignment.
    const last = revisions.filter((row) => row.image.includes('rollout-')).at(-1)!;
    expect(assignment.revision).toBe(last.revision);
  });
});
