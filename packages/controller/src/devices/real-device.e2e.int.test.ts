// A real device under a real controller: systemd 257 and Podman 5.4 in a systemd-nspawn device of
// Debian 13 (packages/agent/src/host/device-lab, docs/device-lab.md) runs the built agent as
// podfleet-agent.service; it reaches the test's Mosquitto and a local registry (Debian's
// docker-registry) over a veth pair to the host and nothing else. The controller runs on a scratch
// Postgres database; the operator uses the `podfleet` CLI. Every check is the controller's view
// (its database, its CLI) or the device's own systemctl and podman.
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandResult, ServiceState } from '@podfleet/shared';
import {
  agentBindArgs,
  assertAgentBuilt,
  installAgent,
} from '../../../agent/src/host/device-lab/device-agent.js';
import {
  startLinkedBroker,
  type LinkedBroker,
} from '../../../agent/src/host/device-lab/device-broker.js';
import { deviceRootfs } from '../../../agent/src/host/device-lab/device-rootfs.js';
import { bootDevice, type LabDevice } from '../../../agent/src/host/device-lab/lab-device.js';
import {
  startLabRegistry,
  type LabRegistry,
} from '../../../agent/src/host/device-lab/lab-registry.js';
import {
  appTarball,
  importAppImage,
  type AppBehaviour,
} from '../../../agent/src/host/device-lab/test-images.js';
import { AGENT_UNIT } from '../../../agent/src/install/agent-unit-file.js';
import {
  Cleanups,
  controllerSite,
  devicesSeen,
  mustRun,
  startE2eController,
  waitFor,
  type DeviceSeen,
  type E2eController,
} from '../rollouts/e2e/harness.js';

const DEVICE = 'lab-e2e-1';
const cleanups = new Cleanups();
const timings: Record<string, number> = {};

let device: LabDevice;
let registry: LabRegistry;
let broker: LinkedBroker;
let e: E2eController;
/** The service's image: a tag in the local registry, which auto-update follows. */
let STABLE: string;

beforeAll(async () => {
  await assertAgentBuilt();
  await timed('device rootfs (debootstrap when cold)', deviceRootfs);
  await appTarball();
  device = await bootDevice({ link: true, persistent: true, nspawnArgs: agentBindArgs() });
  cleanups.add(() => device.shutdown());
  timings['device boot (spawn → running)'] = device.bootMs;
  registry = await startLabRegistry(device);
  cleanups.add(() => registry.stop());
  STABLE = `${registry.address}/podfleet/app:stable`;
  broker = await startLinkedBroker([device], await freePort());
  cleanups.add(() => broker.stop());

  const site = await controllerSite(cleanups, 60);
  site.env.MQTT_URL = broker.hostUrl;
  // Rollouts resolve their tag in the lab registry, as a controller does with a real one.
  site.env.PODFLEET_RESOLVE_TAGS = 'registry';
  site.env.PODFLEET_REGISTRY_INSECURE = registry.address;
  e = await startE2eController(site);
  cleanups.add(() => e.controller.close());

  // v1 goes to the registry and leaves the device: the agent pulls it, as on a real device.
  await timed('push v1 and the never-ready image', async () => {
    await push(STABLE, { MSG: 'v1' });
    await push(`${registry.address}/podfleet/app:no-ready`, { MSG: 'bad', NO_NOTIFY: '1' });
  });

  await installAgent(
    device,
    {
      device: DEVICE,
      brokerUrl: broker.deviceUrl(device),
      publicKeyPem: await readFile(e.publicKeyFile, 'utf8'),
    },
    { enable: true },
  );
  const specs = await mkdtemp(join(tmpdir(), 'pf-lab-e2e-'));
  cleanups.add(() => rm(specs, { recursive: true, force: true }));
  const spec = join(specs, 'web.yaml');
  await writeFile(
    spec,
    [
      'name: web',
      `image: ${STABLE}`,
      'notify: container',
      'autoUpdate: registry',
      'ready: { timeout: 10s, settle: 2s }',
      '',
    ].join('\n'),
  );
  await mustRun(e.cli('devices', 'add', DEVICE, '--labels', 'site=lab'), 'devices add');
  await mustRun(e.cli('groups', 'create', 'lab', '--selector', 'site=lab'), 'groups create');
  await mustRun(e.cli('services', 'apply', '-f', spec), 'services apply');
  await mustRun(e.cli('assign', 'lab', 'web'), 'assign');
}, 600_000);

afterAll(async () => {
  const started = Date.now();
  await cleanups.run();
  timings['teardown'] = Date.now() - started;
  const lines = Object.entries(timings).map(
    ([what, ms]) => `  ${what}: ${(ms / 1000).toFixed(2)}s`,
  );
  console.log(`real device e2e timings:\n${lines.join('\n')}`);
});

/** The digest the registry got for each reference pushed, as podman wrote it. */
const pushed = new Map<string, string>();

/** Imports the test app under a local name and pushes it as `reference`; the local copy goes. */
async function push(reference: string, behaviour: AppBehaviour): Promise<void> {
  const local = 'localhost/build/app:latest';
  await importAppImage(device, local, behaviour);
  const digestFile = '/run/pushed-digest';
  await device.exec(['podman', 'push', '-q', '--digestfile', digestFile, local, `docker://${reference}`]); // prettier-ignore
  pushed.set(reference, (await device.exec(['cat', digestFile])).trim());
  await device.exec(['podman', 'rmi', local]);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings[label] = Date.now() - started;
  }
}

const seen = async (): Promise<DeviceSeen | undefined> =>
  (await devicesSeen(e.controller.db.prisma, [DEVICE])).get(DEVICE);

/** Until the controller's view of the device satisfies `done`. */
function untilSeen(what: string, done: (d: DeviceSeen) => boolean, ms = 90_000) {
  let last: DeviceSeen | undefined;
  return waitFor(
    what,
    ms,
    async () => {
      last = await seen();
      return last && done(last) ? last : undefined;
    },
    () => JSON.stringify(last),
    250,
  );
}

/** Online, on its newest manifest, and (unless told otherwise) the service ready. */
const applied = (d: DeviceSeen, ready = true) =>
  d.online &&
  d.desiredGeneration > 0 &&
  d.appliedGeneration === d.desiredGeneration &&
  d.ready === ready;

/** What the device's app answers, asked from inside its container (busybox nc). */
const answer = async () =>
  (await device.exec(['podman', 'exec', 'web', 'nc', '127.0.0.1', '8080'])).trim();
const show = async (unit: string, property: string) =>
  (await device.exec(['systemctl', 'show', '-p', property, '--value', unit])).trim();

/** The device's events of `type` stored by the controller, newest first. */
async function storedEvents(type: string): Promise<Record<string, unknown>[]> {
  const rows = await e.controller.db.prisma.deviceEvent.findMany({
    where: { deviceId: DEVICE, type },
    orderBy: { at: 'desc' },
  });
  return rows.map((row) => row.payload as Record<string, unknown>);
}

/** The service `web` in the device's last state report, as the controller stored it. */
async function webState(): Promise<ServiceState | undefined> {
  const row = await e.controller.db.prisma.device.findUnique({
    where: { id: DEVICE },
    select: { lastState: true },
  });
  const services = (row?.lastState as { services?: ServiceState[] } | null)?.services;
  return services?.find((s) => s.name === 'web');
}

async function command(...argv: string[]): Promise<CommandResult> {
  const run = await mustRun(e.cli(...argv, '--json'), argv.join(' '));
  return JSON.parse(run.stdout) as CommandResult;
}

describe('a real device under the controller', () => {
  it('runs the service assigned on the controller and reports it back', async () => {
    const device = await timed('assign → applied and reported', () =>
      untilSeen(
        'the device to report web applied and ready',
        (d) => applied(d) && d.image === STABLE,
      ),
    );
    expect(device.online).toBe(true);
    const row = await e.controller.db.prisma.device.findUniqueOrThrow({ where: { id: DEVICE } });
    expect(row).toMatchObject({ systemdVersion: '257', unitStyle: 'quadlet' });
    expect(row.podmanVersion).toMatch(/^5\.4\./);
    expect(await show(AGENT_UNIT, 'ActiveState')).toBe('active');
    expect(await show('web.service', 'ActiveState')).toBe('active');
    expect(await answer()).toBe('v1');
  });

  it('podfleet logs: the container output from the device journal', async () => {
    const logs = await mustRun(e.cli('logs', DEVICE, 'web', '-n', '20'), 'logs');
    expect(logs.stdout).toContain('tinyapp: listening on 8080');
    expect(logs.stdout).toContain('tinyapp: sent READY=1');
  });

  it('rolls back an image that never becomes ready; the controller stores why', async () => {
    const started = await mustRun(
      e.cli(
        'rollout', 'start', 'web', `${registry.address}/podfleet/app:no-ready`,
        '--group', 'lab', '--batch-size', '100%', '--health-timeout', '60s', '--json',
      ),
      'rollout start',
    ); // prettier-ignore
    const rollout = (JSON.parse(started.stdout) as { id: string }).id;
    const finished = await timed('never-ready rollout → rolled back on the device', () =>
      waitFor('the rollout to end', 120_000, async () => {
        const status = await e.controller.rollouts.status(rollout);
        return status && ['failed', 'rolled_back', 'aborted'].includes(status.state)
          ? status
          : undefined;
      }),
    );
    expect(finished.state).not.toBe('succeeded');
    // The tag was resolved once, at the start: the device was given the digest podman pushed.
    const digest = pushed.get(`${registry.address}/podfleet/app:no-ready`);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(finished.targetImage).toBe(`${registry.address}/podfleet/app@${digest}`);
    const [failed] =
      (await e.controller.rollouts.devices(rollout, { state: 'failed', limit: 10 })) ?? [];
    expect(failed?.failure?.reason, JSON.stringify(failed)).toMatch(
      /^(rolled-back|start-timeout)$/,
    );
    const [rollback] = await storedEvents('rollback');
    expect(rollback).toMatchObject({
      type: 'rollback',
      service: 'web',
      trigger: 'apply',
      toImage: expect.stringContaining(STABLE),
      restored: true,
      reason: expect.stringMatching(/web\.service not active within 10s/),
    });
    expect(await answer()).toBe('v1');
    // The rollout's own rollback assigns v1 again: the device is back on the controller's state.
    await untilSeen('the device back on v1', (d) => applied(d) && d.image === STABLE);
  });

  it('registry auto-update: a new image under the same tag is pulled, gated and reported', async () => {
    await push(STABLE, { MSG: 'v2' });
    const dry = await command('autoupdate', DEVICE, '--dry-run');
    expect(dry).toMatchObject({ type: 'auto-update', dryRun: true });
    expect(dry.type === 'auto-update' && dry.results).toContainEqual(
      expect.objectContaining({ unit: 'web.service', policy: 'registry', updated: 'pending' }),
    );
    const result = await timed('auto-update onto v2', () => command('autoupdate', DEVICE));
    expect(result.type === 'auto-update' && result.results).toContainEqual(
      expect.objectContaining({ unit: 'web.service', image: STABLE, updated: 'true' }),
    );
    expect(await answer()).toBe('v2');
    const [reported] = await storedEvents('auto-update');
    expect(reported).toMatchObject({ type: 'auto-update', dryRun: false });
  });

  it('registry auto-update onto an image that crashes after start is rolled back (Podman in Action §7.5) and reported', async () => {
    await push(STABLE, { MSG: 'v3', CRASH_AFTER_MS: '1000' });
    const result = await timed('auto-update onto a crashing image → rolled back', () =>
      command('autoupdate', DEVICE),
    );
    expect(result.type === 'auto-update' && result.results).toContainEqual(
      expect.objectContaining({ unit: 'web.service', updated: 'rolled back' }),
    );
    const [rollback] = await storedEvents('rollback');
    expect(rollback).toMatchObject({ trigger: 'auto-update', service: 'web', restored: true });
    expect(await answer()).toBe('v2');
  });

  it('remembers the image it rolled back from: the next auto-update skips it with no outage, until --retry', async () => {
    const digest = pushed.get(STABLE)!;
    const before = await show('web.service', 'MainPID');
    const skipped = await timed('auto-update with the rejected image still under the tag', () =>
      command('autoupdate', DEVICE),
    );
    expect(skipped.type === 'auto-update' && skipped.results).toContainEqual(
      expect.objectContaining({
        unit: 'web.service',
        updated: 'skipped',
        reason: `rejected ${digest}`,
      }),
    );
    // Nothing was restarted: the same process answers, still v2.
    expect(await show('web.service', 'MainPID')).toBe(before);
    expect(await answer()).toBe('v2');
    // The controller's view of the device says which image it rejected, and the service is ready.
    await waitFor(
      'the rejection in the state report',
      60_000,
      async () => {
        const web = await webState();
        return web?.ready === true && web.rejected?.digest === digest ? web : undefined;
      },
      async () => JSON.stringify(await webState()),
      250,
    );

    const retried = await timed(
      'auto-update --retry onto the rejected image → rolled back again',
      () => command('autoupdate', DEVICE, '--retry'),
    );
    expect(retried.type === 'auto-update' && retried.results).toContainEqual(
      expect.objectContaining({ unit: 'web.service', updated: 'rolled back' }),
    );
    expect(await answer()).toBe('v2');
  });

  it('systemd restarts the agent when it is killed; it reconnects', async () => {
    const pid = await show(AGENT_UNIT, 'MainPID');
    await device.exec(['kill', '-KILL', pid]);
    await untilSeen('the device to go offline (last will)', (d) => !d.online, 30_000);
    await timed('agent killed → online again', () =>
      untilSeen('the device online again', (d) => d.online, 60_000),
    );
    expect(await show(AGENT_UNIT, 'NRestarts')).toBe('1');
    // Online comes at connect; active (READY=1) once its first look at the host is done: whatever
    // that look finds belongs to this test, not to the reboot that follows.
    await waitFor('the agent active again', 60_000, async () =>
      (await show(AGENT_UNIT, 'ActiveState')) === 'active' ? true : undefined,
    );
    expect(await show(AGENT_UNIT, 'MainPID')).not.toBe(pid);
  });

  it('a reboot brings the enabled service back; the agent reconnects with the same generation', async () => {
    const before = await untilSeen('the device settled', applied);
    const container = (await device.exec(['podman', 'inspect', '-f', '{{.Id}}', 'web'])).trim();
    const bootedAt = new Date();
    // The controller's view while the device is down: it must see it go offline (the agent's
    // goodbye at poweroff), then come back — not an old `online` row.
    let wentOffline = false;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        if ((await seen())?.online === false) wentOffline = true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    device = await timed('reboot (poweroff → running)', () => device.reboot());
    await untilSeen('the device to have gone offline', () => wentOffline, 30_000).finally(() => {
      watching = false;
    });
    await watcher;
    const after = await timed('reboot → online and reported', () =>
      untilSeen('the device back online', (d) => d.online && applied(d), 120_000),
    );
    expect(after.appliedGeneration).toBe(before.appliedGeneration);
    expect(await show('web.service', 'ActiveState')).toBe('active');
    const again = (await device.exec(['podman', 'inspect', '-f', '{{.Id}}', 'web'])).trim();
    expect(again).not.toBe(container);
    expect(await answer()).toBe('v2');
    // systemd started it at boot (WantedBy=multi-user.target): the agent had nothing to repair.
    const repairs = await e.controller.db.prisma.deviceEvent.findMany({
      where: { deviceId: DEVICE, type: { in: ['drift', 'apply'] }, at: { gte: bootedAt } },
    });
    expect(repairs.map((r) => ({ at: r.at, payload: r.payload }))).toEqual([]);
  });

  it('a service taken off the group is stopped and removed from the device', async () => {
    await mustRun(e.cli('assign', 'lab', 'web', '--rm'), 'assign --rm');
    const gone = await timed('unassign → removed and reported', () =>
      untilSeen('the device to report no web', (d) => applied(d, false) && d.image === undefined),
    );
    expect(gone.online).toBe(true);
    expect(await show('web.service', 'LoadState')).toBe('not-found');
    const exists = await device.run(['podman', 'container', 'exists', 'web'], {
      timeoutMs: 10_000,
    });
    expect(exists.code).toBe(1);
    expect(await show(AGENT_UNIT, 'ActiveState')).toBe('active');
  });
});
