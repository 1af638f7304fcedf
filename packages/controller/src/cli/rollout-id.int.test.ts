import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Cleanups,
  controllerSite,
  mustRun,
  provisionFleet,
  simIds,
  startE2eController,
  uniquePrefix,
  type E2eController,
} from '../rollouts/e2e/harness.js';

const V1 = 'registry.example/acme/web:1.4';
const V2 = 'registry.example/acme/web:1.9';

// A real controller with group edge of 3 registered devices (no agents: a rollout waits for them)
// and rollouts named as operators name them: by a short prefix of the id, or `latest`.
describe('rollout ids: unique prefixes and latest', () => {
  const cleanups = new Cleanups();
  let e: E2eController;
  let first: string;
  let second: string;

  const stateOf = async (...argv: string[]) => {
    const run = await mustRun(e.cli('rollout', ...argv, '--json'), argv.join(' '));
    return JSON.parse(run.stdout) as { id: string; state: string };
  };

  beforeAll(async () => {
    const site = await controllerSite(cleanups);
    e = await startE2eController(site);
    cleanups.add(() => e.controller.close());
    const prefix = uniquePrefix('rollout-ids');
    await provisionFleet(e, { ids: simIds(prefix, 3), label: prefix, image: V1 }, site.dataDir);
    const start = async () =>
      (await stateOf('start', 'web', V2, '--group', 'edge', '--offline', 'wait')).id;
    first = await start();
    await mustRun(e.cli('rollout', 'abort', first), 'rollout abort');
    second = await start();
    // A third rollout of another service, older than both, whose id begins as the first's does.
    const row = await e.controller.db.prisma.rollout.findUniqueOrThrow({ where: { id: first } });
    await e.controller.db.prisma.rollout.create({
      data: {
        id: `${first.slice(0, 8)}-0000-4000-8000-000000000000`,
        service: 'api',
        spec: row.spec ?? {},
        targetImage: 'registry.example/acme/api:2',
        state: 'aborted',
        batchCount: 1,
        createdBy: 'test',
        createdAt: new Date('2020-01-01T00:00:00Z'),
      },
    });
  }, 60_000);
  afterAll(() => cleanups.run());

  it('status, pause and resume take the first 4+ hex digits of an id', async () => {
    // The second rollout's first 6 digits, unless the first or third begin with the same.
    const short = [4, 6, 8, 12].map((n) => second.slice(0, n)).find((p) => !first.startsWith(p))!;
    expect((await stateOf('status', short)).id).toBe(second);
    expect(await stateOf('pause', short)).toMatchObject({ id: second, state: 'paused' });
    expect(await stateOf('resume', short.toUpperCase())).toMatchObject({ id: second });
  });

  it('latest is the newest rollout, of --service when given', async () => {
    expect((await stateOf('status', 'latest')).id).toBe(second);
    expect((await stateOf('status', 'latest', '--service', 'web')).id).toBe(second);
    const table = await e.cli('rollout', 'status', 'latest');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(second);
    expect(await e.cli('rollout', 'status', 'latest', '--service', 'db')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'podfleet: 404 no rollout of db yet\n',
    });
  });

  it('a prefix that begins several rollouts exits 2 listing them', async () => {
    const run = await e.cli('rollout', 'status', first.slice(0, 8));
    expect(run.code).toBe(2);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`podfleet: ID: ${first.slice(0, 8)} begins 2 rollouts; give more of it:`);
    expect(lines.slice(1).map((line) => line.trim().split(/\s+/).slice(1, 4))).toEqual([
      [first, 'web', 'aborted'],
      [`${first.slice(0, 8)}-0000-4000-8000-000000000000`, 'api', 'aborted'],
    ]);
  });

  it('refuses a prefix under 4 digits, text that is no id, an unknown one, --service with an id', async () => {
    const refused = async (argv: string[], code: number, stderr: string) => {
      const run = await e.cli(...argv);
      expect({ code: run.code, stderr: run.stderr }).toEqual({ code, stderr });
    };
    const notAnId = (text: string) =>
      `podfleet: ID: not a rollout id, its first 4+ hex digits, or latest: "${text}"\n`;
    await refused(['rollout', 'status', second.slice(0, 3)], 2, notAnId(second.slice(0, 3)));
    await refused(['rollout', 'approve', 'newest'], 2, notAnId('newest'));
    await refused(['rollout', 'watch', 'ffff0000ffff'], 1, 'podfleet: 404 rollout ffff0000ffff not found\n'); // prettier-ignore
    await refused(
      ['rollout', 'abort', second.slice(0, 8), '--service', 'web'],
      2,
      'podfleet: --service: only with latest (an id names one rollout already)\n',
    );
  });

  it('rollout start of a mistyped service is a 404 naming the close one', async () => {
    const run = await e.cli('rollout', 'start', 'wbe', V2, '--group', 'edge');
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 1,
      stderr: 'podfleet: 404 service wbe not found (did you mean web?)\n',
    });
  });

  it('abort latest stops the newest rollout', async () => {
    expect(await stateOf('abort', 'latest', '--service', 'web')).toMatchObject({ id: second });
    const state = (await stateOf('status', second)).state;
    expect(['aborted', 'rolling-back']).toContain(state);
  });
});
