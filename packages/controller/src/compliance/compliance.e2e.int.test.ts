import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../cli/api-client.js';
import type { DeviceView } from '../devices/schemas.js';
import {
  Cleanups,
  mustRun,
  waitFor,
  waitForRollout,
  type E2eController,
} from '../rollouts/e2e/harness.js';
import { fleetOn, startRollout } from '../rollouts/e2e/sim-fleet.js';
import { FINISHED } from '../rollouts/status.js';

const V14 = 'registry.example/acme/web:1.4';
const V18 = 'registry.example/acme/web:1.8';

// Issue 16's finding: three simulated devices on web 1.4, one of which fails every new image (its
// agent rolls back and reports the generation applied with 1.4); a rollout to 1.8 that accepts
// one failure succeeds. The operator must see that device as failed everywhere, not converged.
describe('compliance after a rollout that succeeded with an accepted failure', () => {
  const cleanups = new Cleanups();
  let e: E2eController;
  let ids: string[];
  let rollout: string;
  let failedId: string;

  beforeAll(async () => {
    const fleet = await fleetOn(cleanups, {
      name: 'compliance',
      n: 3,
      image: V14,
      sim: { failRate: 1 / 3 },
    });
    ({ e, ids } = fleet);
    failedId = fleet.fleet.devices.find((device) => device.failing)!.id;
    const started = await startRollout(e, V18, '--batch-size', '100%', '--max-failures', '1', '--health-timeout', '60s'); // prettier-ignore
    rollout = started.id;
    const done = await waitForRollout(e.controller, rollout, FINISHED, 90_000);
    expect(done.state, done.reason).toBe('succeeded');
    expect(done.counts.failed).toBe(1);
  }, 180_000);
  afterAll(() => cleanups.run());

  const listed = async (...flags: string[]) =>
    JSON.parse(
      (await mustRun(e.cli('devices', 'ls', ...flags, '--json'), 'devices ls')).stdout,
    ) as Json<DeviceView>[];

  it('lists the device that failed the generation and still runs 1.4 as failed, with its reason', async () => {
    // The agent's report after its rollback may come a moment after the rollout's verdict.
    const [failed] = await waitFor('the failed device to be failed', 20_000, async () => {
      const found = await listed('--compliance', 'failed');
      return found.length > 0 ? found : undefined;
    });
    expect(failed!.id).toBe(failedId);
    // The generation says it converged; compliance says what runs.
    expect(failed!.appliedGeneration).toBe(failed!.desiredGeneration);
    const [web] = failed!.compliance.services;
    expect(web).toMatchObject({ service: 'web', state: 'failed', desired: V18, running: V14 });
    expect(web!.failure?.reason).toMatch(/^(rolled-back|start-timeout|unhealthy)$/);

    const synced = await listed('--compliance', 'in-sync');
    expect(synced.map((d) => d.id)).toEqual(ids.filter((id) => id !== failedId));
  });

  it('shows compliance as a column of devices ls', async () => {
    const { stdout } = await mustRun(e.cli('devices', 'ls'), 'devices ls');
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID +ONLINE +COMPLIANCE +GENERATION +LAST SEEN +LABELS$/);
    const row = lines.find((line) => line.startsWith(failedId))!;
    expect(row).toMatch(new RegExp(`^${failedId} +yes +failed \\(web: [a-z-]+\\) +(\\d+)/\\1 `));
    for (const id of ids.filter((other) => other !== failedId)) {
      expect(lines.find((line) => line.startsWith(id))).toMatch(/ yes +in-sync +/);
    }
  });

  it('refuses an unknown compliance state, naming the flag', async () => {
    const run = await e.cli('devices', 'ls', '--compliance', 'converged');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^podfleet: 400 --compliance: .*in-sync/);
  });

  it('shows the version distribution in services ls', async () => {
    const { stdout } = await mustRun(e.cli('services', 'ls'), 'services ls');
    const web = stdout.split('\n').find((line) => line.startsWith('web '))!;
    // Each simulated device has its own registry, so its image ids differ: counted, not merged.
    expect(web).toMatch(
      / 2 × registry\.example\/acme\/web:1\.8 \(2 image ids\), 1 × registry\.example\/acme\/web:1\.4$/,
    );
    const json = JSON.parse(
      (await mustRun(e.cli('services', 'ls', '--json'), 'services ls')).stdout,
    );
    expect(
      json[0].running.map((v: { image: string; devices: number }) => [v.image, v.devices]),
    ).toEqual([
      [V18, 2],
      [V14, 1],
    ]);
  });

  it('says in rollout status that the success accepted a failed device', async () => {
    const { stdout } = await mustRun(e.cli('rollout', 'status', rollout), 'rollout status');
    expect(stdout).toContain('state succeeded with 1 failed device accepted');
    expect(stdout).toMatch(new RegExp(`  ${failedId}: .*\\(accepted\\)\\n`));
  });

  it('lists each device of the rollout with its compliance now', async () => {
    const { stdout } = await mustRun(
      e.cli('rollout', 'status', rollout, '--devices'),
      'rollout status --devices',
    );
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^DEVICE +BATCH +STATE +COMPLIANCE +ONLINE +IMAGE +REASON$/);
    expect(lines.find((line) => line.startsWith(failedId))).toMatch(/ failed +failed +yes /);
    for (const id of ids.filter((other) => other !== failedId)) {
      expect(lines.find((line) => line.startsWith(id))).toMatch(/ succeeded +in-sync +yes /);
    }
  });
});
