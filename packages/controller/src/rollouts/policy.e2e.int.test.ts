import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { PrismaClient } from '../db/client.js';
import {
  Cleanups,
  describeRollout,
  devicesSeen,
  mustRun,
  sleep,
  waitFor,
  waitForRollout,
  waitUntilAllRun,
  type E2eController,
} from './e2e/harness.js';
import { devicesOf, expectCountsAddUp, fleetOn } from './e2e/sim-fleet.js';
import { FINISHED, type RolloutStatus } from './status.js';

// Rollout policy (issue 9, decision 006) end to end: a controller on Postgres and Mosquitto, an
// operator using the CLI with a spec file, and `podfleet-agent sim` devices.

const V1 = 'registry.example/acme/web@sha256:' + '1'.repeat(64);
const V2 = 'registry.example/acme/web:2.0';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const timings: string[] = [];
afterAll(() => {
  if (timings.length > 0) console.log(`policy e2e timings:\n  ${timings.join('\n  ')}`);
});
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** `podfleet rollout start -f spec.yaml --json` with `strategy` as given (YAML is JSON). */
async function startWithSpec(
  e: E2eController,
  dir: string,
  image: string,
  strategy: Record<string, unknown>,
): Promise<RolloutStatus> {
  const file = join(dir, 'rollout.yaml');
  const spec = { service: 'web', image, targets: { groups: ['edge'] }, strategy };
  await writeFile(file, JSON.stringify(spec));
  const started = await mustRun(e.cli('rollout', 'start', '-f', file, '--json'), 'rollout start');
  return JSON.parse(started.stdout) as RolloutStatus;
}

/** Sets labels through the API, as `PATCH /v1/devices/:id` (a merge patch). */
async function label(e: E2eController, id: string, labels: Record<string, string>) {
  const response = await fetch(`${e.controller.url}/v1/devices/${id}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${e.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ labels }),
  });
  expect(response.status, await response.clone().text()).toBe(200);
}

/** Devices of each site updating or failed right now, from what the controller stored. */
async function disruptedBySite(prisma: PrismaClient, id: string): Promise<Map<string, number>> {
  const rows = await prisma.$queryRawUnsafe<{ site: string; n: number }[]>(
    `SELECT d.labels->>'site' AS site, count(*)::int AS n FROM rollout_devices rd
       JOIN devices d ON d.id = rd.device_id
     WHERE rd.rollout_id = $1::uuid AND rd.state IN ('updating', 'failed', 'reverting')
     GROUP BY 1`,
    id,
  );
  return new Map(rows.map((row) => [row.site, row.n]));
}

describe('rollout policy end to end: Postgres, Mosquitto, a controller and podfleet-agent sim', () => {
  it('holds devices back by a per-site budget, says which site holds them, and waits for an approval after the canary', async () => {
    const began = Date.now();
    const { e, ids, prisma, dataDir } = await fleetOn(cleanups, { name: 'budget', n: 14, image: V1 }); // prettier-ignore
    // Two sites of 7; the first device of each is labelled canary, so the canary holds both.
    for (const [i, id] of ids.entries())
      await label(e, id, { site: i < 7 ? 'berlin' : 'paris', ...(i % 7 === 0 ? { canary: 'yes' } : {}) }); // prettier-ignore
    const { id } = await startWithSpec(e, dataDir, V2, {
      canary: 2,
      batchSize: '100%',
      healthTimeout: '60s',
      policy: {
        bake: '2s',
        disruptionBudget: { groupBy: ['site'], maxUnavailable: 2 },
        approval: { after: ['canary'] },
      },
    });

    let status: RolloutStatus | undefined;
    status = await waitFor(
      'the canary to succeed and the approval to hold batch 1',
      60_000,
      async () => {
        status = await e.controller.rollouts.status(id);
        return status?.awaitingApproval ? status : undefined;
      },
      () => describeRollout(status),
    );
    expect(status).toMatchObject({ state: 'running', currentBatch: 1 });
    expect(status.waiting).toEqual(['12 devices: waiting for approval after batch 0']);
    // Held for a while: nothing of batch 1 starts without the approval.
    await sleep(1500);
    expect((await e.controller.rollouts.status(id))!.batches[1]!.counts.pending).toBe(12);

    const approved = await mustRun(e.cli('rollout', 'approve', id), 'rollout approve');
    expect(approved.stdout).toContain('batch 0 approved by');
    const audit = await prisma.auditEntry.findFirst({
      where: { target: `rollout/${id}`, action: 'rollout.approve' },
    });
    expect(audit).toMatchObject({ details: { approvedAfterBatch: 0 } });
    expect(audit?.actor).toBeTruthy();

    // From here no site ever has more than 2 devices updating or failed, and the wait says why.
    const heldBy = new Set<string>();
    const done = await waitFor(
      'the rollout to finish within its budget',
      90_000,
      async () => {
        const bySite = await disruptedBySite(prisma, id);
        for (const [site, n] of bySite) expect(n, `site ${site}`).toBeLessThanOrEqual(2);
        status = (await e.controller.rollouts.status(id))!;
        for (const line of status.waiting) {
          const group = /budget of group (site=\w+) full/.exec(line)?.[1];
          if (group) heldBy.add(group);
        }
        return FINISHED.includes(status.state) ? status : undefined;
      },
      () => describeRollout(status),
      100,
    );
    expect(done.state, done.reason).toBe('succeeded');
    expect([...heldBy].sort()).toEqual(['site=berlin', 'site=paris']);
    expect(done.counts).toMatchObject({ total: 14, succeeded: 14 });
    expectCountsAddUp(done);
    await waitUntilAllRun(prisma, ids, V2, 10_000);
    timings.push(`per-site budget of 2, 14 devices, bake 2 s: ${seconds(Date.now() - began)}`);
  });

  it('waits for a maintenance window: no device of the site starts before it opens', async () => {
    const began = Date.now();
    const { e, ids, prisma, dataDir } = await fleetOn(cleanups, { name: 'window', n: 6, image: V1 }); // prettier-ignore
    for (const [i, id] of ids.entries()) await label(e, id, { site: i < 3 ? 'night' : 'day' });
    // The night site's window opens at the next whole minute at least 15 s away (UTC).
    const minute = 60_000;
    let opens = Math.ceil(Date.now() / minute) * minute;
    if (opens - Date.now() < 15_000) opens += minute;
    const hhmm = (at: number) => new Date(at).toISOString().slice(11, 16);
    const schedule = `${hhmm(opens)}-${hhmm(opens + 5 * minute)}`;
    const { id } = await startWithSpec(e, dataDir, V2, {
      batchSize: '100%',
      healthTimeout: '60s',
      policy: {
        bake: '1s',
        windows: [{ match: { site: 'night' }, schedule, timeZone: 'UTC' }],
      },
    });
    let status: RolloutStatus | undefined;
    status = await waitFor(
      'the day site to succeed while the night site waits',
      40_000,
      async () => {
        status = await e.controller.rollouts.status(id);
        return status?.counts.succeeded === 3 ? status : undefined;
      },
      () => describeRollout(status),
    );
    const until = new Date(opens).toISOString().slice(0, 16);
    expect(status.waiting).toEqual([
      `3 devices: window ${schedule} UTC closed until ${until}+00:00`,
    ]);
    const night = (await devicesOf(e, id, {})).filter((d) => ids.indexOf(d.id) < 3);
    expect(night.map((d) => [d.state, d.hold])).toEqual(
      Array(3).fill(['pending', `window ${schedule} UTC closed until ${until}+00:00`]),
    );

    const done = await waitForRollout(e.controller, id, FINISHED, opens - Date.now() + 60_000);
    expect(done.state, done.reason).toBe('succeeded');
    const switched = await prisma.rolloutDevice.findMany({
      where: { rolloutId: id, deviceId: { in: ids.slice(0, 3) } },
      select: { switchedAt: true },
    });
    for (const { switchedAt } of switched)
      expect(switchedAt!.getTime()).toBeGreaterThanOrEqual(opens);
    await waitUntilAllRun(prisma, ids, V2, 10_000);
    timings.push(
      `window opening ${seconds(opens - began)} after setup began: ${seconds(Date.now() - began)}`,
    );
  });

  it('aborts on its criteria and reverts fleet-wide: every device back on the old digest', async () => {
    const began = Date.now();
    // Three of ten devices fail every new image (their agent rolls it back).
    const { e, ids, prisma, dataDir } = await fleetOn(cleanups, {
      name: 'abort',
      n: 10,
      image: V1,
      sim: { failRate: 0.3 },
    });
    const { id } = await startWithSpec(e, dataDir, V2, {
      batchSize: '100%',
      healthTimeout: '60s',
      policy: {
        bake: '20s',
        successThreshold: '50%',
        abort: { failures: 2, onAbort: 'revert' },
      },
    });
    const done = await waitForRollout(e.controller, id, FINISHED, 60_000);
    expect(done.state, done.reason).toBe('rolled_back');
    expect(done.reason).toMatch(
      /^rolling back: aborted: [23] of [23] finished devices failed \(failures ≥ 2/,
    );
    expect(done.counts.failed).toBeGreaterThanOrEqual(2);
    expect(done.counts.reverted + done.counts.failed + done.counts.skipped).toBe(10);
    // The agents' own rollbacks, as they reported them (structured since issue 9).
    for (const failure of done.failures)
      expect(failure.failure?.reason).toMatch(/^(rolled-back|start-timeout|unhealthy)$/);
    // Every device, failed ones included (their agents rolled back), runs the old digest again.
    await waitUntilAllRun(prisma, ids, V1, 20_000);
    const seen = await devicesSeen(prisma, ids);
    expect(ids.filter((d) => seen.get(d)?.image !== V1)).toEqual([]);
    timings.push(`abort and fleet-wide revert, 10 devices: ${seconds(Date.now() - began)}`);
  });

  it('finishes without stalling with 20% of the devices offline (offlineDevices: defer); they update when they return', async () => {
    const began = Date.now();
    const { e, ids, fleet, prisma, dataDir } = await fleetOn(cleanups, { name: 'defer', n: 20, image: V1 }); // prettier-ignore
    const offline = ids.filter((_, i) => i % 5 === 2);
    for (const device of fleet.devices) if (offline.includes(device.id)) device.session.suspend();
    await waitFor('the offline devices to be offline at the controller', 20_000, async () => {
      const seen = await devicesSeen(prisma, offline);
      return offline.every((d) => seen.get(d)?.online === false) ? true : undefined;
    });
    const startedAt = Date.now();
    const { id } = await startWithSpec(e, dataDir, V2, {
      batchSize: '50%',
      healthTimeout: '60s',
      policy: { bake: '1s', offlineDevices: 'defer' },
    });
    const done = await waitForRollout(e.controller, id, FINISHED, 60_000);
    const finishedMs = Date.now() - startedAt;
    expect(done.state, done.reason).toBe('succeeded');
    expect(done.counts).toMatchObject({
      total: 20,
      succeeded: 16,
      failed: 0,
      updating: 4,
      offline: 4,
    });
    const away = await devicesOf(e, id, { state: 'updating' });
    expect(away.map((d) => [d.id, d.reason]).sort()).toEqual(
      offline.map((d) => [
        d,
        'offline when the rollout finished: gets the new image when it returns',
      ]),
    );

    for (const device of fleet.devices) if (offline.includes(device.id)) device.session.resume();
    await waitUntilAllRun(prisma, ids, V2, 30_000);
    timings.push(
      `20% offline, defer (20 devices): finished in ${seconds(finishedMs)}, all on V2 ${seconds(Date.now() - began)} after setup began`,
    );
  });
});
