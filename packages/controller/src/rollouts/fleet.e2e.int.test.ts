import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { SimFleet } from '../../../agent/src/sim/sim-fleet.js';
import { openDatabase } from '../db/client.js';
import {
  Cleanups,
  capturingLogger,
  clearRetained,
  controllerSite,
  describeRollout,
  devicesSeen,
  happenings,
  mustRun,
  provisionFleet,
  runs,
  simIds,
  sleep,
  spawnController,
  startE2eController,
  uniquePrefix,
  waitFor,
  waitForRollout,
  waitUntilAllRun,
  within,
  type E2eController,
} from './e2e/harness.js';
import {
  devicesOf,
  expectCountsAddUp,
  fleetOn,
  startRollout,
  startSim,
  type SimOptions,
} from './e2e/sim-fleet.js';
import { FINISHED, type RolloutDeviceStatus, type RolloutStatus } from './status.js';

const V1 = 'registry.example/acme/web:1.0';
const V2 = 'registry.example/acme/web:2.0';
/** A release that never gets ready: the simulator is started with `--bad-image broken`. */
const BROKEN = 'registry.example/acme/web:2.0-broken';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** Wall time per scenario, printed once the file is done. */
const timings: string[] = [];
afterAll(() => {
  if (timings.length > 0) console.log(`fleet e2e timings:\n  ${timings.join('\n  ')}`);
});
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The fleet of a scenario, on V1, with this file's cleanups. */
const fleetOnV1 = (name: string, n: number, sim: SimOptions = {}) =>
  fleetOn(cleanups, { name, n, image: V1, sim });

describe('rollouts end to end: Postgres, Mosquitto, a controller and podfleet-agent sim', () => {
  it('rolls a new image out to 500 devices, canary then batches of 25%, and makes it the group’s assignment', async () => {
    const began = Date.now();
    const { e, ids, fleet, prisma } = await fleetOnV1('ok', 500);
    const setupMs = Date.now() - began;

    const startedAt = Date.now();
    const { id } = await startRollout(e, V2, '--canary', '10', '--batch-size', '25%', '--health-timeout', '60s'); // prettier-ignore
    const done = await waitForRollout(e.controller, id, FINISHED, 150_000);
    const rolloutMs = Date.now() - startedAt;
    timings.push(`500 devices succeed: setup ${seconds(setupMs)}, rollout ${seconds(rolloutMs)}`);

    expect(done.state, done.reason).toBe('succeeded');
    // 10 canaries, then 25% of the other 490 (rounded up) per batch.
    expect(done.batches.map((b) => [b.kind, b.total])).toEqual([
      ['canary', 10],
      ['batch', 123],
      ['batch', 123],
      ['batch', 123],
      ['batch', 121],
    ]);
    expect(done.counts).toMatchObject({ total: 500, succeeded: 500, failed: 0, pending: 0 });
    expectCountsAddUp(done);
    for (const batch of done.batches) {
      expect([batch.state, batch.counts.succeeded]).toEqual(['done', batch.total]);
    }

    // Every device says so itself: its last state report has V2 applied and ready.
    const seen = await devicesSeen(prisma, ids);
    expect(ids.filter((device) => !runs(seen.get(device), V2))).toEqual([]);
    expect(fleet.progress()).toMatchObject({ applied: 500, failed: 0, rollbacks: 0 });

    // Absorbed: group edge now runs a revision with V2; recomputing changes no manifest.
    const assignment = await prisma.assignment.findUniqueOrThrow({
      where: { groupName_serviceName: { groupName: 'edge', serviceName: 'web' } },
      include: { serviceRevision: true },
    });
    expect([assignment.revision, assignment.serviceRevision.image]).toEqual([2, V2]);
    expect((await e.controller.sync.recompute())?.published).toBe(0);
  });

  it('rolls the canary back when the new image never gets ready, and touches no device outside it', async () => {
    const began = Date.now();
    const { e, ids, fleet, prisma } = await fleetOnV1('canary', 40, { badImage: 'broken' });
    const before = await devicesSeen(prisma, ids);

    const started = await startRollout(e, BROKEN, '--canary', '4', '--batch-size', '25%', '--health-timeout', '30s'); // prettier-ignore
    const canary = (await devicesOf(e, started.id, { batch: 0 })).map((d) => d.id);
    expect(canary).toEqual(ids.slice(0, 4));
    const others = ids.slice(4);
    const done = await waitForRollout(e.controller, started.id, FINISHED, 60_000);

    expect(done.state, done.reason).toBe('rolled_back');
    expect(done.reason).toMatch(/^rolling back: batch 0: [1-4] of 4 devices failed/);
    // A canary device either failed (its agent rolled back, with its reason) or was pointed back.
    for (const device of await devicesOf(e, started.id, { batch: 0 })) {
      expect(['failed', 'reverted']).toContain(device.state);
      expect(device.reason).toBeTruthy();
    }
    expect(done.counts).toMatchObject({ pending: 36, updating: 0, succeeded: 0, reverting: 0 });
    expectCountsAddUp(done);

    // Every canary device runs V1 again, at its newest desired generation.
    await waitUntilAllRun(prisma, canary, V1, 30_000);
    const rollbacks = fleet.devices
      .filter((d) => canary.includes(d.id))
      .map((d) => d.status.rollbacks);
    expect(rollbacks.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);

    // Outside the canary nothing moved: same generations and image, no switch, no apply.
    const after = await devicesSeen(prisma, others);
    expect(others.map((d) => after.get(d))).toEqual(others.map((d) => before.get(d)));
    const parts = await prisma.rolloutDevice.findMany({
      where: { rolloutId: started.id, deviceId: { in: others } },
    });
    expect(parts.filter((p) => p.state !== 'pending' || p.switchedAt !== null)).toEqual([]);
    const applies = await prisma.deviceEvent.findMany({
      where: { deviceId: { in: others }, type: 'apply' },
    });
    const newer = applies.filter(
      (a) =>
        (a.payload as { generation: number }).generation >
        before.get(a.deviceId)!.appliedGeneration,
    );
    expect(newer).toEqual([]);
    expect(fleet.devices.filter((d) => others.includes(d.id) && d.status.rollbacks > 0)).toEqual(
      [],
    );
    timings.push(`canary fails, rolled back (40 devices): ${seconds(Date.now() - began)}`);
  });

  it('starts no batch while paused, and finishes once resumed', async () => {
    const began = Date.now();
    const { e, ids, prisma } = await fleetOnV1('pause', 40);
    const pauseBetween = 3;
    const { id } = await startRollout(e, V2, '--batch-size', '50%', '--pause-between', `${pauseBetween}s`, '--health-timeout', '30s'); // prettier-ignore

    // The first batch done, the rollout waits pauseBetweenBatches before the next: pause then.
    let status: RolloutStatus | undefined;
    await waitFor(
      'the first batch to finish',
      30_000,
      async () => {
        status = await e.controller.rollouts.status(id);
        return status?.batches[0]?.state === 'done' ? true : undefined;
      },
      () => describeRollout(status),
    );
    const paused = JSON.parse(
      (await mustRun(e.cli('rollout', 'pause', id, '--json'), 'rollout pause')).stdout,
    ) as RolloutStatus;
    // Batch 0 succeeded; batch 1 is current, held by pauseBetweenBatches.
    expect(paused).toMatchObject({ state: 'paused', currentBatch: 1 });
    expect(paused.counts.succeeded).toBe(20);

    // Watched for longer than pauseBetweenBatches: running, batch 1 would have started by then.
    const rest = ids.slice(20);
    const generations = await devicesSeen(prisma, rest);
    const watchUntil = Date.now() + (pauseBetween + 1.5) * 1000;
    while (Date.now() < watchUntil) {
      status = (await e.controller.rollouts.status(id))!;
      expect([status.state, status.currentBatch]).toEqual(['paused', 1]);
      for (const batch of status.batches.slice(1)) {
        expect([batch.state, batch.counts.pending]).toEqual(['pending', batch.total]);
      }
      await sleep(250);
    }
    const still = await devicesSeen(prisma, rest);
    expect(rest.map((d) => still.get(d)!.desiredGeneration)).toEqual(
      rest.map((d) => generations.get(d)!.desiredGeneration),
    );

    const resumedAt = Date.now();
    const resumed = JSON.parse(
      (await mustRun(e.cli('rollout', 'resume', id, '--json'), 'rollout resume')).stdout,
    ) as RolloutStatus;
    expect(resumed.state).toBe('running');
    const done = await waitForRollout(e.controller, id, FINISHED, 60_000);
    expect(done.state, done.reason).toBe('succeeded');
    expect(done.counts).toMatchObject({ total: 40, succeeded: 40 });
    await waitUntilAllRun(prisma, ids, V2, 10_000);

    // The second batch was switched after the resume, not before.
    const switched = await prisma.rolloutDevice.findMany({
      where: { rolloutId: id, batch: { gt: 0 } },
      select: { switchedAt: true },
    });
    expect(switched.filter((d) => !d.switchedAt || d.switchedAt.getTime() < resumedAt)).toEqual([]);
    const audit = await prisma.auditEntry.findMany({
      where: { target: `rollout/${id}` },
      orderBy: { id: 'asc' },
    });
    expect(audit.map((a) => a.action)).toEqual([
      'rollout.start',
      'rollout.pause',
      'rollout.resume',
    ]);
    timings.push(`paused and resumed (40 devices): ${seconds(Date.now() - began)}`);
  });

  describe('with 10% of the devices offline', () => {
    /** One offline device in each batch of 25%: the 6th of every ten. */
    const offlineOf = (ids: string[]) => ids.filter((_, i) => i % 10 === 5);

    /** Drops their connections as a power loss would: the broker sends their last will. */
    async function takeOffline(fleet: SimFleet, e: E2eController, offline: string[]) {
      for (const device of fleet.devices) if (offline.includes(device.id)) device.session.suspend();
      await waitFor(
        `${offline.length} devices to be offline at the controller`,
        20_000,
        async () => {
          const seen = await devicesSeen(e.controller.db.prisma, offline);
          return offline.every((d) => seen.get(d)?.online === false) ? true : undefined;
        },
      );
    }

    it('waits for them under offlineDevices: wait, counting them offline not failed, and finishes once they return', async () => {
      const began = Date.now();
      const { e, ids, fleet, prisma } = await fleetOnV1('offwait', 40);
      const offline = offlineOf(ids);
      await takeOffline(fleet, e, offline);
      const healthTimeout = 6;
      const { id } = await startRollout(e, V2, '--batch-size', '25%', '--health-timeout', `${healthTimeout}s`, '--offline', 'wait'); // prettier-ignore

      let status: RolloutStatus | undefined;
      await waitFor(
        'the online devices of the first batch to succeed',
        30_000,
        async () => {
          status = await e.controller.rollouts.status(id);
          return status?.batches[0]?.counts.succeeded === 9 ? true : undefined;
        },
        () => describeRollout(status),
      );
      // Held for longer than healthTimeout: an absent device is waited for, never timed out.
      const holdUntil = Date.now() + (healthTimeout + 2) * 1000;
      while (Date.now() < holdUntil) {
        status = (await e.controller.rollouts.status(id))!;
        expect([status.state, status.currentBatch, status.counts.failed]).toEqual([
          'running',
          0,
          0,
        ]);
        expect(status.counts.offline).toBe(4);
        const batch0 = await devicesOf(e, id, { batch: 0 });
        // Not switched while away: it gets the new image when it returns.
        expect(batch0.find((d) => d.id === offline[0])).toMatchObject({
          state: 'pending',
          online: false,
          hold: 'offline: waiting for it to return',
        });
        await sleep(250);
      }

      const backAt = Date.now();
      for (const device of fleet.devices) if (offline.includes(device.id)) device.session.resume();
      const done = await waitForRollout(e.controller, id, FINISHED, 60_000);
      expect(done.state, done.reason).toBe('succeeded');
      expect(done.counts).toMatchObject({
        total: 40,
        succeeded: 40,
        failed: 0,
        skipped: 0,
        offline: 0,
      });
      expectCountsAddUp(done);
      await waitUntilAllRun(prisma, ids, V2, 10_000);
      timings.push(
        `10% offline, wait (40 devices): ${seconds(Date.now() - began)}, finished ${seconds(Date.now() - backAt)} after they returned`,
      );
    });

    it('succeeds without them under offlineDevices: skip, where they are skipped', async () => {
      const began = Date.now();
      const { e, ids, fleet, prisma } = await fleetOnV1('offskip', 40);
      const offline = offlineOf(ids);
      await takeOffline(fleet, e, offline);
      const before = await devicesSeen(prisma, offline);
      const { id } = await startRollout(e, V2, '--batch-size', '25%', '--health-timeout', '30s', '--offline', 'skip'); // prettier-ignore

      const done = await waitForRollout(e.controller, id, FINISHED, 60_000);
      expect(done.state, done.reason).toBe('succeeded');
      expect(done.counts).toMatchObject({ total: 40, succeeded: 36, skipped: 4, failed: 0 });
      expectCountsAddUp(done);
      // Through the CLI: `rollout status --devices` pages GET /v1/rollouts/:id/devices.
      const listed = await mustRun(
        e.cli('rollout', 'status', id, '--devices', '--state', 'skipped', '--json'),
        'rollout status --devices',
      );
      const skipped = JSON.parse(listed.stdout) as RolloutDeviceStatus[];
      expect(skipped.map((d) => [d.id, d.reason])).toEqual(
        offline.map((d) => [d, 'offline when its turn came']),
      );
      const online = ids.filter((d) => !offline.includes(d));
      await waitUntilAllRun(prisma, online, V2, 10_000);
      // The skipped devices never heard of it: their last report is the one from before.
      const after = await devicesSeen(prisma, offline);
      expect(offline.map((d) => after.get(d)?.appliedGeneration)).toEqual(
        offline.map((d) => before.get(d)?.appliedGeneration),
      );
      expect(offline.every((d) => after.get(d)?.image === V1)).toBe(true);
      timings.push(`10% offline, skip (40 devices): ${seconds(Date.now() - began)}`);
    });
  });

  it('finishes a rollout after its controller is killed mid-batch, starting no batch twice', async () => {
    const began = Date.now();
    // Long enough a broker session that the restarted controller gets what arrived meanwhile.
    const site = await controllerSite(cleanups, 60);
    // The test's own view of the database, which outlives both controllers.
    const db = await openDatabase({ DATABASE_URL: site.scratch.url });
    cleanups.add(() => db.close());
    const prisma = db.prisma;
    const first = await spawnController(site, cleanups);
    const prefix = uniquePrefix('kill');
    const ids = simIds(prefix, 60);
    cleanups.add(() => clearRetained(ids));
    await provisionFleet(first, { ids, label: prefix, image: V1 }, site.dataDir);
    const fleet = await startSim(
      cleanups,
      join(site.dataDir, 'controller-public-key.pem'),
      prefix,
      ids.length,
    );
    await waitUntilAllRun(prisma, ids, V1, 60_000);

    const started = await mustRun(
      first.cli('rollout', 'start', 'web', V2, '--group', 'edge', '--batch-size', '20%', '--health-timeout', '60s', '--json'), // prettier-ignore
      'rollout start',
    );
    const { id } = JSON.parse(started.stdout) as RolloutStatus;

    // Killed while batch 2 of 5 is in progress: devices switched, not all of them reported.
    await waitFor(
      'batch 2 to be in progress',
      60_000,
      async () => {
        const row = await prisma.rollout.findUniqueOrThrow({ where: { id } });
        if (row.currentBatch !== 2 || !row.batchStartedAt) return undefined;
        const updating = await prisma.rolloutDevice.count({
          where: { rolloutId: id, batch: 2, state: 'updating' },
        });
        // And logged: the line goes out after the commit, and a kill before it would lose it.
        const logged = happenings(first.lines).includes('batch 2 started: 12 devices');
        return updating > 0 && logged ? true : undefined;
      },
      undefined,
      20,
    );
    await first.kill();
    const killedAt = Date.now();
    // While no controller runs, the devices of batch 2 go on applying and reporting.
    await sleep(2500);

    const lines: string[] = [];
    const second = await startE2eController(site, capturingLogger(lines));
    cleanups.add(() => second.controller.close());
    const done = await waitForRollout(second.controller, id, FINISHED, 60_000);
    expect(done.state, done.reason).toBe('succeeded');
    expect(done.counts).toMatchObject({ total: 60, succeeded: 60, failed: 0 });
    await waitUntilAllRun(prisma, ids, V2, 10_000);

    // Each batch started once: batch 2 and those before by the killed controller, the last by its
    // successor (which batch the kill fell in is a matter of timing; that none ran twice is not).
    const before = happenings(first.lines).filter((l) => l.includes(' started: '));
    const after = happenings(lines).filter((l) => l.includes(' started: '));
    expect([...before, ...after]).toEqual(
      [0, 1, 2, 3, 4].map((b) => `batch ${b} started: 12 devices`),
    );
    expect(before).toContain('batch 2 started: 12 devices');
    expect(after).toContain('batch 4 started: 12 devices');
    // One switch time per batch: no device was switched twice.
    const parts = await prisma.rolloutDevice.findMany({ where: { rolloutId: id } });
    for (let batch = 0; batch < 5; batch++) {
      const times = new Set(
        parts.filter((p) => p.batch === batch).map((p) => p.switchedAt?.getTime()),
      );
      expect(times.size).toBe(1);
    }
    expect(fleet.progress()).toMatchObject({ applied: 60, rollbacks: 0 });
    // Every device's apply of V2 is stored exactly once, also those reported while no controller
    // ran: the broker kept them in the controller's session (decision 004), and the restarted
    // controller listens before it connects.
    const seen = await devicesSeen(prisma, ids);
    const applies = await prisma.deviceEvent.findMany({
      where: { deviceId: { in: ids }, type: 'apply' },
      select: { deviceId: true, payload: true },
    });
    const missing = ids.filter((device) => {
      const generation = seen.get(device)?.appliedGeneration;
      const stored = applies.filter(
        (e) =>
          e.deviceId === device &&
          (e.payload as { result?: string; generation?: number }).result === 'applied' &&
          (e.payload as { generation?: number }).generation === generation,
      );
      return stored.length !== 1;
    });
    expect(missing).toEqual([]);
    timings.push(
      `controller killed in batch 2 (60 devices): ${seconds(Date.now() - began)}, done ${seconds(Date.now() - killedAt)} after the kill`,
    );
  });

  it('`rollout watch` exits 0 when a rollout succeeds and 1 when it is rolled back', async () => {
    const began = Date.now();
    const { e } = await fleetOnV1('cli', 20, { badImage: 'broken' });
    const rollout = [
      '--group',
      'edge',
      '--canary',
      '2',
      '--batch-size',
      '50%',
      '--health-timeout',
      '30s',
    ];

    // `rollout start --watch --json`: one status per line as it changes, then exit 0.
    const ok = await within(
      '`rollout start --watch` to end',
      60_000,
      e.cli('rollout', 'start', 'web', V2, ...rollout, '--watch', '--json'),
    );
    expect(ok.code, ok.stderr).toBe(0);
    const statuses = ok.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as RolloutStatus);
    expect(statuses.length).toBeGreaterThan(1);
    expect(statuses.at(-1)).toMatchObject({ state: 'succeeded', counts: { succeeded: 20 } });

    // `rollout watch ID` on a rollout whose canary fails: the happenings, then exit 1 with why.
    const { id } = await startRollout(e, BROKEN, ...rollout);
    const bad = await within('`rollout watch` to end', 60_000, e.cli('rollout', 'watch', id));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      new RegExp(`^podfleet: rollout ${id} rolled_back: rolling back: batch 0: `),
    );
    expect(bad.stdout).toContain('rolled back: every updated device runs its previous image again');
    // Watching a finished rollout answers at once, with the same exit codes.
    const again = (rolloutId: string) =>
      within('`rollout watch` again', 10_000, e.cli('rollout', 'watch', rolloutId));
    expect((await again(statuses.at(-1)!.id)).code).toBe(0);
    expect((await again(id)).code).toBe(1);
    timings.push(`CLI watch, success and rollback (20 devices): ${seconds(Date.now() - began)}`);
  });
});
