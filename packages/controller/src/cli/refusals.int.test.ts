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

// A real controller (as `podfleet serve` starts it) with group edge of 3 registered devices running
// web at V1, and an operator who gives it meaningless values: each is refused naming what was wrong.
describe('values the CLI and the controller refuse rather than bend', () => {
  const cleanups = new Cleanups();
  let e: E2eController;
  let rollout: string;

  beforeAll(async () => {
    const site = await controllerSite(cleanups);
    e = await startE2eController(site);
    cleanups.add(() => e.controller.close());
    const prefix = uniquePrefix('refusals');
    await provisionFleet(e, { ids: simIds(prefix, 3), label: prefix, image: V1 }, site.dataDir);
    const started = await mustRun(
      e.cli('rollout', 'start', 'web', V2, '--group', 'edge', '--json'),
      'rollout start',
    );
    rollout = (JSON.parse(started.stdout) as { id: string }).id;
    await mustRun(e.cli('rollout', 'abort', rollout), 'rollout abort');
  }, 60_000);
  afterAll(() => cleanups.run());

  const refused = async (argv: string[], code: number, stderr: string) => {
    const run = await e.cli(...argv);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code, stderr });
  };

  it('an image that names no version, as rollout start and plan see it', async () => {
    for (const verb of ['start', 'plan']) {
      await refused(
        ['rollout', verb, 'web', 'img', '--group', 'edge'],
        2,
        'podfleet: IMAGE: names no version: give a tag or a digest (img:2, img@sha256:…)\n',
      );
    }
  });

  it('a canary as large as the target, named by its flag', async () => {
    await refused(
      ['rollout', 'start', 'web', V2, '--group', 'edge', '--canary', '100'],
      2,
      'podfleet: 400 --canary: 100 must be fewer than the 3 devices the rollout changes (a canary leaves devices for the batches)\n',
    );
  });

  it('zero and over-100% batches', async () => {
    await refused(
      ['rollout', 'start', 'web', V2, '--group', 'edge', '--batch-size', '0'],
      2,
      'podfleet: --batch-size: must be at least 1 (or above 0%)\n',
    );
    await refused(
      ['rollout', 'plan', 'web', V2, '--group', 'edge', '--batch-size', '101%'],
      2,
      'podfleet: --batch-size: must be at most 100%\n',
    );
  });

  it('a plan that changes no device: exit 1 with the reason, from plan and from start', async () => {
    const reason =
      'no device to roll web out to: every targeted device is left out (already runs registry.example/acme/web:1.4: 3)';
    const plan = await e.cli('rollout', 'plan', 'web', V1, '--group', 'edge');
    expect(plan.code).toBe(1);
    expect(plan.stderr).toBe(`podfleet: ${reason}\n`);
    expect(plan.stdout).toContain('web → registry.example/acme/web:1.4: 0 devices in 0 batches\n');
    await refused(
      ['rollout', 'start', 'web', V1, '--group', 'edge'],
      1,
      `podfleet: 409 ${reason}\n`,
    );
  });

  it('an unknown event type', async () => {
    await refused(
      ['events', '--type', 'bogus'],
      2,
      'podfleet: 400 --type: must be one of apply, auto-update, rollback, drift, error\n',
    );
    expect((await e.cli('events', '--type', 'rollback')).code).toBe(0);
  });

  it('rollout status filters without --devices, and unknown filter values', async () => {
    await refused(
      ['rollout', 'status', rollout, '--state', 'failed'],
      2,
      'podfleet: --state: filters the device listing: add --devices\n',
    );
    await refused(
      ['rollout', 'status', rollout, '--batch', '1'],
      2,
      'podfleet: --batch: filters the device listing: add --devices\n',
    );
    await refused(
      ['rollout', 'status', rollout, '--devices', '--batch', 'first'],
      2,
      'podfleet: --batch: must be a whole number, not first\n',
    );
    const bogus = await e.cli('rollout', 'status', rollout, '--devices', '--state', 'bogus');
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/^podfleet: 400 --state: /);
    // With --devices the filter applies: the aborted rollout's devices never left pending.
    const listed = async (state: string) => {
      const run = await e.cli(
        'rollout',
        'status',
        rollout,
        '--devices',
        '--state',
        state,
        '--json',
      );
      return (JSON.parse(run.stdout) as { state: string }[]).map((device) => device.state);
    };
    expect(await listed('failed')).toEqual([]);
    expect(await listed('pending')).toEqual(['pending', 'pending', 'pending']);
  });

  it('assign --rm with a --revision it would ignore, leaving the assignment', async () => {
    await refused(
      ['assign', 'edge', 'web', '--rm', '--revision', '1'],
      2,
      'podfleet: --revision: not with --rm (removing runs no revision)\n',
    );
    expect(await e.controller.db.prisma.assignment.count({ where: { groupName: 'edge' } })).toBe(1);
  });

  it('the same through the API: 400 naming the field, a misspelt filter included', async () => {
    const get = (path: string) =>
      fetch(`${e.controller.url}${path}`, { headers: { authorization: `Bearer ${e.token}` } });
    const cases: [path: string, line: RegExp][] = [
      ['/v1/events?type=bogus', /^querystring\.type: must be one of apply, /],
      ['/v1/rollouts?state=bogus', /^querystring\.state: /],
      ['/v1/rollouts?stat=failed', /^querystring: Unrecognized key: "stat"/],
      ['/v1/rollouts?service=Web!', /^querystring\.service: not a service name/],
      [`/v1/rollouts/${rollout}/devices?stat=failed`, /^querystring: Unrecognized key: "stat"/],
      [`/v1/rollouts/${rollout}/devices?state=bogus`, /^querystring\.state: /],
      [`/v1/rollouts/${rollout}/devices?batch=-1`, /^querystring\.batch: /],
    ];
    for (const [path, line] of cases) {
      const response = await get(path);
      const body = (await response.json()) as { message: string };
      expect([path, response.status, body.message]).toEqual([
        path,
        400,
        expect.stringMatching(line),
      ]);
    }
  });

  it('an unknown rollout state in rollout ls', async () => {
    const run = await e.cli('rollout', 'ls', '--state', 'bogus');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^podfleet: 400 querystring\.state: /);
  });
});
