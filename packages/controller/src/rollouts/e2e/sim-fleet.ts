import { pino } from 'pino';
import { expect } from 'vitest';
import { readPublicKeys } from '../../../../agent/src/cli/sim-options.js';
import { SimFleet } from '../../../../agent/src/sim/sim-fleet.js';
import type { RolloutEngine } from '../engine.js';
import type { RolloutDeviceStatus, RolloutStatus } from '../status.js';
import {
  MOSQUITTO,
  clearRetained,
  controllerSite,
  mustRun,
  provisionFleet,
  simIds,
  startE2eController,
  uniquePrefix,
  waitUntilAllRun,
  type Cleanups,
  type E2eController,
} from './harness.js';

export interface SimOptions {
  /** Images whose reference contains this never get ready on any device. */
  badImage?: string;
  /** Share of devices whose new images fail after their first apply. */
  failRate?: number;
}

/**
 * `podfleet-agent sim` in this process: real agents (MQTT session, outbox, reconciler, health
 * gate) on in-memory hosts, trusting the controller's public key file as `--key` would, with a
 * one-second settle so that an apply takes about a second.
 */
export async function startSim(
  cleanups: Cleanups,
  keyFile: string,
  prefix: string,
  devices: number,
  options: SimOptions = {},
): Promise<SimFleet> {
  const fleet = new SimFleet({
    devices,
    broker: MOSQUITTO,
    prefix,
    labels: {},
    failRate: options.failRate ?? 0,
    offlineRate: 0,
    trustedKeys: await readPublicKeys(keyFile),
    settle: 1,
    // A report a second: a rollout's bake ends with a report made after it (policy/success.ts).
    reportMs: 1000,
    logger: pino({ level: 'silent' }),
    ...(options.badImage !== undefined ? { badImage: options.badImage } : {}),
  });
  cleanups.add(() => fleet.stop());
  await fleet.start();
  return fleet;
}

/**
 * A controller on a scratch database, `n` devices registered and grouped through the CLI (group
 * `edge` runs service `web` at `image`), and the simulated fleet running it on every device.
 */
export async function fleetOn(
  cleanups: Cleanups,
  setup: { name: string; n: number; image: string; sim?: SimOptions },
) {
  const site = await controllerSite(cleanups);
  const e = await startE2eController(site);
  cleanups.add(() => e.controller.close());
  const prefix = uniquePrefix(setup.name);
  const ids = simIds(prefix, setup.n);
  cleanups.add(() => clearRetained(ids));
  await provisionFleet(e, { ids, label: prefix, image: setup.image }, site.dataDir);
  const fleet = await startSim(cleanups, e.publicKeyFile, prefix, setup.n, setup.sim);
  await waitUntilAllRun(e.controller.db.prisma, ids, setup.image, 60_000 + setup.n * 100);
  return { e, ids, fleet, prisma: e.controller.db.prisma, dataDir: site.dataDir };
}

/** `podfleet rollout start web IMAGE --group edge FLAGS --json`. */
export async function startRollout(e: E2eController, image: string, ...flags: string[]) {
  const started = await mustRun(
    e.cli('rollout', 'start', 'web', image, '--group', 'edge', ...flags, '--json'),
    'rollout start',
  );
  return JSON.parse(started.stdout) as RolloutStatus;
}

/** A rollout's devices (one page of up to 500: enough for these fleets). */
export async function devicesOf(
  e: { controller: { rollouts: RolloutEngine } },
  id: string,
  query: { batch?: number; state?: RolloutDeviceStatus['state'] },
): Promise<RolloutDeviceStatus[]> {
  return (await e.controller.rollouts.devices(id, { ...query, limit: 500 }))!;
}

/** Per-state device counts add up to the total, overall and batch by batch. */
export function expectCountsAddUp(status: RolloutStatus) {
  const { offline: _offline, total, ...states } = status.counts;
  expect(Object.values(states).reduce((a, b) => a + b, 0)).toBe(total);
  expect(status.batches.reduce((sum, b) => sum + b.total, 0)).toBe(total);
  for (const batch of status.batches) {
    const { offline: _o, ...byState } = batch.counts;
    expect(Object.values(byState).reduce((a, b) => a + b, 0)).toBe(batch.total);
  }
}
