import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Cleanups,
  mustRun,
  waitFor,
  waitForRollout,
  type E2eController,
} from '../rollouts/e2e/harness.js';
import { fleetOn, startRollout } from '../rollouts/e2e/sim-fleet.js';
import type { PrismaClient } from '../db/client.js';

const V14 = 'registry.example/acme/web:1.4';
const V19 = 'registry.example/acme/web:1.9';
const spec = (image: string, extra = '') =>
  `name: web\nimage: ${image}\nready: { timeout: 20s, settle: 1s }\n${extra}`;

// Three simulated devices on web 1.4, a rollout to 1.9 that succeeds (the group's assignment moves
// to a revision with 1.9), then the operator applies the original spec file again.
describe('services apply after a rollout: no silent downgrade', () => {
  const cleanups = new Cleanups();
  let e: E2eController;
  let prisma: PrismaClient;
  let dir: string;
  let rollout: string;

  beforeAll(async () => {
    const fleet = await fleetOn(cleanups, { name: 'downgrade', n: 3, image: V14 });
    ({ e, prisma } = fleet);
    dir = fleet.dataDir;
    const started = await startRollout(e, V19, '--batch-size', '100%', '--health-timeout', '60s');
    rollout = started.id;
    const done = await waitForRollout(e.controller, rollout, ['succeeded', 'failed', 'rolled_back'], 60_000); // prettier-ignore
    expect(done.state, done.reason).toBe('succeeded');
    await waitFor('the rollout absorbed into the assignment', 10_000, async () =>
      (await prisma.rollout.findUnique({ where: { id: rollout } }))?.absorbed ? true : undefined,
    );
  }, 120_000);
  afterAll(() => cleanups.run());

  const revisions = () =>
    prisma.serviceRevision
      .findMany({ where: { serviceName: 'web' }, orderBy: { revision: 'asc' } })
      .then((rows) => rows.map((row) => `${row.revision} ${row.image}`));
  const apply = async (text: string, ...flags: string[]) => {
    const file = join(dir, 'web.yaml');
    await writeFile(file, text);
    return { file, run: await e.cli('services', 'apply', '-f', file, ...flags) };
  };

  it('refuses the spec file with the old image, naming the group, the image and the rollout', async () => {
    expect(await revisions()).toEqual([`1 ${V14}`, `2 ${V19}`]);
    const { file, run } = await apply(spec(V14));
    expect(run).toEqual({
      code: 1,
      stdout: '',
      stderr:
        `podfleet: 409 ${file}: image: group edge runs web ${V19} since rollout ${rollout.slice(0, 8)}; ` +
        `${V14} as the latest revision would move it back at the next assign ` +
        `(put ${V19} in the spec, start a rollout, or force)\n`,
    });
    expect(await revisions()).toEqual([`1 ${V14}`, `2 ${V19}`]);
  });

  it('takes a changed spec that keeps the rolled-out image', async () => {
    const { run } = await apply(spec(V19, 'env: { GREETING: hi }\n'));
    expect(run).toEqual({ code: 0, stdout: 'web: revision 3 created\n', stderr: '' });
  });

  it('stores the old image with --force, and audits what it overrode', async () => {
    const { run } = await apply(spec(V14), '--force');
    expect(run).toEqual({ code: 0, stdout: 'web: revision 4 created\n', stderr: '' });
    const audit = await prisma.auditEntry.findFirst({
      where: { action: 'service.apply' },
      orderBy: { id: 'desc' },
    });
    expect(audit?.details).toMatchObject({
      revision: 4,
      image: V14,
      forcedOver: [{ group: 'edge', image: V19, rollout }],
    });
  });

  it('leaves a group the operator assigned since to the operator', async () => {
    await mustRun(e.cli('assign', 'edge', 'web'), 'assign');
    const { run } = await apply(spec(V14, 'env: { GREETING: again }\n'));
    expect(run).toEqual({ code: 0, stdout: 'web: revision 5 created\n', stderr: '' });
  });
});
