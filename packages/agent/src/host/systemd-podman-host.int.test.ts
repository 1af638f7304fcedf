// SystemdPodmanHost and the real executor on a real device: systemd 257 and Podman 5.4 in a
// systemd-nspawn container of a Debian 13 rootfs (device-lab/, docs/device-lab.md). Every service
// goes through reconcile() from a manifest, as the agent runs it; the device is checked with its own
// systemctl and podman. Nothing here skips: a machine that cannot boot the device fails the suite
// with the reason.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  generateSigningKey,
  renderUnits,
  signManifest,
  unitStyleFor,
  type DeviceManifest,
  type ServiceSpecInput,
  type UnitStyle,
} from '@podfleet/shared';
import { systemClock } from '../clock/clock.js';
import { reconcile, type ReconcileDeps } from '../reconcile/reconcile.js';
import { FileStateStore } from '../state/file-state-store.js';
import { deviceRootfs, type DeviceSuite } from './device-lab/device-rootfs.js';
import { bootDevice, type LabDevice } from './device-lab/lab-device.js';
import { IMAGE_UNIT, importSystemdImage, systemdImageTarball } from './device-lab/systemd-image.js';
import { appTarball, importAppImage } from './device-lab/test-images.js';
import { SystemdPodmanHost } from './systemd-podman-host.js';

const key = generateSigningKey();
const DEVICE_ID = 'lab-device-1';
const APP = 'localhost/podfleet/app';
const SYSTEMD_IMAGE = 'localhost/podfleet/systemd:v1';
const timings: Record<string, number> = {};
const reasons: string[] = [];

/**
 * The devices, one after the other: Debian 13 (Podman 5.4, Quadlet, and `service` units forced)
 * and Debian 12 (Podman 4.3.1, which has no Quadlet: the agent writes `service` units there).
 */
const DEVICES: { suite: DeviceSuite; podman: RegExp; systemd: string; styles: UnitStyle[] }[] = [
  { suite: 'trixie', podman: /^5\.4\./, systemd: '257', styles: ['quadlet', 'service'] },
  { suite: 'bookworm', podman: /^4\.3\./, systemd: '252', styles: ['service'] },
];

let suite: DeviceSuite;
let device: LabDevice;
let driver: SystemdPodmanHost;
const images = { v1: '', v2: '', bad: '', crash: '' };

async function bootLabDevice(booted: DeviceSuite) {
  suite = booted;
  // Cold: debootstrap and gcc; warm: found in the cache.
  await timed('device rootfs (debootstrap when cold)', () => deviceRootfs(suite));
  await timed('test app tarball (gcc when cold)', appTarball);
  await timed('systemd image tarball (tar of the rootfs when cold)', systemdImageTarball);
  device = await bootDevice({ suite });
  timings[`${suite}: device boot (spawn → running)`] = device.bootMs;
  driver = new SystemdPodmanHost({ run: device.run, root: device.root });
  const imported = Date.now();
  images.v1 = await importAppImage(device, `${APP}:v1`, { MSG: 'v1' });
  images.v2 = await importAppImage(device, `${APP}:v2`, { MSG: 'v2' });
  images.bad = await importAppImage(device, `${APP}:bad`, { MSG: 'bad', NO_NOTIFY: '1' });
  images.crash = await importAppImage(device, `${APP}:crash`, {
    MSG: 'crash',
    CRASH_AFTER_MS: '1000',
  });
  timings[`${suite}: 4 test images imported`] = Date.now() - imported;
  await timed('systemd image imported', () => importSystemdImage(device, SYSTEMD_IMAGE));
}

async function shutDownLabDevice() {
  const started = Date.now();
  await device?.shutdown();
  timings[`${suite}: device shutdown`] = Date.now() - started;
}

afterAll(() => {
  const lines = Object.entries(timings).map(
    ([what, ms]) => `  ${what}: ${(ms / 1000).toFixed(2)}s`,
  );
  console.log(
    `device lab timings:\n${lines.join('\n')}\nrollback reasons:\n  ${reasons.join('\n  ')}`,
  );
});

/** One agent's view: the executor with a fresh state directory, on the shared device. */
async function agent(style: UnitStyle) {
  const state = await mkdtemp(join(tmpdir(), 'podfleet-lab-state-'));
  const deps: ReconcileDeps = {
    driver,
    store: new FileStateStore(state),
    clock: systemClock,
    device: DEVICE_ID,
    pollMs: 200,
    style,
  };
  let generation = 0;
  let cleared = false;
  const clear = async () => {
    cleared = true;
    const outcome = await reconcile(manifest(++generation, []), deps);
    await rm(state, { recursive: true, force: true });
    return outcome;
  };
  // A failed test still takes its service off the shared device, or the next test would see it.
  onTestFinished(async () => {
    if (!cleared) await clear();
  });
  return {
    apply: (services: ServiceSpecInput[]) => reconcile(manifest(++generation, services), deps),
    /** Removes everything: the last check of a test, and its cleanup. */
    clear,
  };
}

function manifest(generation: number, services: ServiceSpecInput[]): DeviceManifest {
  const issuedAt = new Date().toISOString();
  return signManifest({ device: DEVICE_ID, generation, issuedAt, services }, key.privateKeyPem);
}

const isActive = async (unit: string) =>
  (await device.run(['systemctl', 'is-active', unit], { timeoutMs: 10_000 })).stdout.trim();
const containerExists = async (name: string) =>
  (await device.run(['podman', 'container', 'exists', name], { timeoutMs: 10_000 })).code === 0;
/** What the app in the container answers, asked from inside the container (busybox nc). */
const answer = async (name: string) =>
  (await device.exec(['podman', 'exec', name, 'nc', '127.0.0.1', '8080'])).trim();

/** The reason of the one rollback event of an apply; kept for the report. */
function rollbackReason(outcome: Awaited<ReturnType<typeof reconcile>>): string {
  const rollbacks = outcome.events.filter((event) => event.type === 'rollback');
  expect(rollbacks).toHaveLength(1);
  const reason = rollbacks[0]?.type === 'rollback' ? rollbacks[0].reason : '';
  reasons.push(reason);
  return reason;
}

/** Polls `probe` until it returns `want`; the last value seen otherwise, after `ms`. */
async function untilSays(probe: () => Promise<string>, want: string, ms = 30_000) {
  const deadline = Date.now() + ms;
  let said = await probe();
  while (said !== want && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    said = await probe();
  }
  return said;
}

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings[`${suite}: ${label}`] = Date.now() - started;
  }
}

describe.each(DEVICES)('a $suite device', ({ suite, podman, systemd, styles }) => {
  beforeAll(() => bootLabDevice(suite));
  afterAll(shutDownLabDevice);

  it(`reports the device: Podman ${podman.source}, systemd ${systemd}, ${styles[0]} units`, async () => {
    expect(await driver.podmanVersion()).toMatch(podman);
    expect(unitStyleFor(await driver.podmanVersion())).toBe(styles[0]);
    expect(await driver.systemdVersion()).toBe(systemd);
  });

  describe.each(styles)('%s units on the device', (style) => {
    const unitFile = (name: string) =>
      style === 'quadlet' ? `${name}.container` : `${name}.service`;

    it('installs a spec as units and runs it, restarts it on a new image, removes it', async () => {
      await timed(`${style}: install, update, remove`, async () => {
        const name = `web-${style}`;
        const unit = `${name}.service`;
        const lab = await agent(style);
        const spec = (image: string): ServiceSpecInput => ({
          name,
          image,
          ready: { timeout: 10, settle: 2 },
        });

        const installed = await lab.apply([spec(`${APP}:v1`)]);
        expect(installed.result).toBe('applied');
        expect(installed.services).toEqual([{ name, image: `${APP}:v1`, action: 'installed' }]);
        const files = await driver.listUnitFiles();
        expect(files.map((f) => f.name)).toContain(unitFile(name));
        expect(files.find((f) => f.name === unitFile(name))?.contents).toBe(
          renderUnits(spec(`${APP}:v1`), { style })[0]!.contents,
        );
        expect(await isActive(unit)).toBe('active');
        const first = await driver.unitStatus(unit);
        expect(first).toMatchObject({ load: 'loaded', active: 'active', sub: 'running' });
        expect(first.container?.imageId).toBe(images.v1);
        // ActiveEnterTimestamp, read in UTC: this run entered active moments ago (same kernel clock).
        expect(Date.now() - Date.parse(first.activeSince!)).toBeLessThan(60_000);
        expect(await answer(name)).toBe('v1');
        // The container's output reaches the unit's journal (journald log driver).
        expect(await driver.journal(unit, 50)).toContain('tinyapp: listening on 8080');

        const updated = await lab.apply([spec(`${APP}:v2`)]);
        expect(updated.result).toBe('applied');
        expect(updated.services).toEqual([{ name, image: `${APP}:v2`, action: 'updated' }]);
        const second = await driver.unitStatus(unit);
        expect(second.active).toBe('active');
        expect(second.container?.imageId).toBe(images.v2);
        expect(second.mainPid).not.toBe(first.mainPid);
        expect(Date.parse(second.activeSince!)).toBeGreaterThan(Date.parse(first.activeSince!));
        expect(await answer(name)).toBe('v2');

        const removed = await lab.clear();
        expect(removed.result).toBe('applied');
        expect(removed.services).toEqual([{ name, image: `${APP}:v2`, action: 'removed' }]);
        expect(
          await driver.readUnitFile(style === 'quadlet' ? 'quadlet' : 'systemd', unitFile(name)),
        ).toBeUndefined();
        expect(await driver.unitStatus(unit)).toMatchObject({
          load: 'not-found',
          active: 'inactive',
        });
        expect(await containerExists(name)).toBe(false);
      });
    });

    it('rolls back an image that never sends READY=1 (notify container) to the previous unit and image', async () => {
      await timed(`${style}: never-ready rollback`, async () => {
        const name = `ready-${style}`;
        const unit = `${name}.service`;
        const lab = await agent(style);
        const spec = (image: string): ServiceSpecInput => ({
          name,
          image,
          notify: 'container',
          ready: { timeout: 4, settle: 1 },
        });
        expect((await lab.apply([spec(`${APP}:v1`)])).result).toBe('applied');

        const outcome = await lab.apply([spec(`${APP}:bad`)]);
        expect(outcome.result).toBe('failed');
        expect(outcome.services).toEqual([{ name, image: `${APP}:v1`, action: 'rolled back' }]);
        const rollback = outcome.events.find((event) => event.type === 'rollback');
        expect(rollback).toMatchObject({
          type: 'rollback',
          device: DEVICE_ID,
          service: name,
          generation: 2,
          trigger: 'apply',
          fromImage: `${APP}:bad`,
          toImage: `${APP}:v1`,
          restored: true,
        });
        expect(rollbackReason(outcome)).toMatch(
          new RegExp(`${unit} (not active within 4s|failed|exited|restarted)`),
        );
        expect(outcome.events.at(-1)).toMatchObject({ type: 'apply', result: 'failed' });

        // The previous unit file and image run again.
        const file = await driver.readUnitFile(
          style === 'quadlet' ? 'quadlet' : 'systemd',
          unitFile(name),
        );
        expect(file?.contents).toBe(renderUnits(spec(`${APP}:v1`), { style })[0]!.contents);
        expect(await isActive(unit)).toBe('active');
        expect((await driver.unitStatus(unit)).container?.imageId).toBe(images.v1);
        expect(await answer(name)).toBe('v1');
        await lab.clear();
      });
    });

    it('rolls back an image that exits after conmon reported it ready (the settle check)', async () => {
      await timed(`${style}: crash-after-start rollback`, async () => {
        const name = `settle-${style}`;
        const unit = `${name}.service`;
        const lab = await agent(style);
        // --sdnotify=conmon: systemd sees READY=1 as soon as conmon runs the container; Podman's own
        // check (auto-update --rollback) passes there. Only the agent's settle period sees the crash.
        const spec = (image: string): ServiceSpecInput => ({
          name,
          image,
          notify: 'conmon',
          ready: { timeout: 10, settle: 3 },
        });
        expect((await lab.apply([spec(`${APP}:v1`)])).result).toBe('applied');

        const outcome = await lab.apply([spec(`${APP}:crash`)]);
        expect(outcome.result).toBe('failed');
        const rollback = outcome.events.find((event) => event.type === 'rollback');
        expect(rollback).toMatchObject({
          service: name,
          fromImage: `${APP}:crash`,
          toImage: `${APP}:v1`,
          restored: true,
        });
        expect(rollbackReason(outcome)).toMatch(
          /exited .* waits to be restarted|restarted \d time|left active during settle|main process changed/,
        );
        // For the rollout policy: the reason, and the crashed run's own journal lines.
        expect(rollback).toMatchObject({
          failure: { reason: 'crashed-after-start', unit },
        });
        const failure = rollback?.type === 'rollback' ? rollback.failure : undefined;
        expect(failure?.journal.join('\n')).toContain('CRASH_AFTER_MS reached');
        // The Podman gap itself: systemd had reported the crashing version started before it died.
        const journal = await driver.journal(unit, 200);
        const crashed = journal.findIndex((line) => line.includes('CRASH_AFTER_MS reached'));
        expect(crashed, 'the crash image ran and crashed').toBeGreaterThan(0);
        const before = journal.slice(0, crashed);
        const started = before.findLastIndex((line) => line.startsWith('Started '));
        const stopped = before.findLastIndex((line) => /^Stopp(ing|ed) /.test(line));
        expect(started, 'systemd: Started …, after the old version stopped').toBeGreaterThan(
          stopped,
        );
        expect(await isActive(unit)).toBe('active');
        expect((await driver.unitStatus(unit)).container?.imageId).toBe(images.v1);
        expect(await answer(name)).toBe('v1');
        await lab.clear();
      });
    });

    it('socket activation: no container until the first connection, which the container serves', async () => {
      await timed(`${style}: socket activation`, async () => {
        const name = `sock-${style}`;
        const port = style === 'quadlet' ? 18090 : 18091;
        const lab = await agent(style);
        const outcome = await lab.apply([
          {
            name,
            image: `${APP}:v2`,
            socket: { listen: [`127.0.0.1:${port}`] },
            ready: { timeout: 10, settle: 1 },
          },
        ]);
        expect(outcome.result).toBe('applied');
        expect(await isActive(`${name}.socket`)).toBe('active');
        expect(await isActive(`${name}.service`)).toBe('inactive');
        expect(await containerExists(name)).toBe(false);

        const connected = Date.now();
        expect((await device.connect(port)).trim()).toBe('v2');
        timings[`${suite}: ${style}: first connection served`] = Date.now() - connected;
        expect(await isActive(`${name}.service`)).toBe('active');
        expect(await containerExists(name)).toBe(true);

        await lab.clear();
        expect(await driver.unitStatus(`${name}.socket`)).toMatchObject({ load: 'not-found' });
        expect(await containerExists(name)).toBe(false);
      });
    });

    it('systemd mode (Podman in Action §7.1): the container runs its own systemd and services, and stops on SIGRTMIN+3', async () => {
      await timed(`${style}: systemd-mode container`, async () => {
        const name = `init-${style}`;
        const lab = await agent(style);
        const since = (await device.exec(['date', '-u', '+%Y-%m-%dT%H:%M:%SZ'])).trim();
        const outcome = await lab.apply([
          { name, image: SYSTEMD_IMAGE, systemd: 'always', ready: { timeout: 30, settle: 1 } },
        ]);
        expect(outcome.result).toBe('applied');
        const inside = (argv: string[]) =>
          device.run(['podman', 'exec', name, ...argv], { timeoutMs: 10_000 });
        const booted = async () => (await inside(['systemctl', 'is-system-running'])).stdout.trim();
        expect(await untilSays(booted, 'running')).toBe('running');
        expect((await inside(['systemctl', 'is-active', IMAGE_UNIT])).stdout.trim()).toBe('active');
        expect((await inside(['journalctl', '-u', IMAGE_UNIT, '-o', 'cat'])).stdout).toContain(
          'hello from the container',
        );
        const signal = await device.exec([
          'podman',
          'inspect',
          '-f',
          '{{.Config.StopSignal}}',
          name,
        ]);
        expect(signal.trim()).toMatch(/^(SIGRTMIN\+3|37)$/);

        // systemd as PID 1 takes SIGTERM as "re-execute", not "exit": only SIGRTMIN+3 shuts it
        // down, and a clean shutdown exits 0 (a SIGKILL after the stop timeout would be 137).
        await device.exec(['systemctl', 'stop', `${name}.service`], 120_000);
        const died = await device.exec([
        'podman', 'events', '--stream=false', '--since', since, '--filter', `container=${name}`,
        '--filter', 'event=died', '--format', '{{.ContainerExitCode}}',
      ]); // prettier-ignore
        expect(died.trim().split('\n').at(-1)).toBe('0');
        const journal = await device.exec(['journalctl', '-u', `${name}.service`, '-o', 'cat']);
        expect(journal).not.toMatch(/resorting to SIGKILL/);
        await lab.clear();
      });
    });

    it('podman auto-update (local policy): pending on a newly tagged image, then updated', async () => {
      await timed(`${style}: auto-update`, async () => {
        const name = `auto-${style}`;
        const unit = `${name}.service`;
        const reference = `localhost/podfleet/${name}:latest`;
        const lab = await agent(style);
        const first = await importAppImage(device, reference, { MSG: 'a1' });
        const spec: ServiceSpecInput = {
          name,
          image: reference,
          autoUpdate: 'local',
          ready: { timeout: 10, settle: 1 },
        };
        expect((await lab.apply([spec])).result).toBe('applied');
        const row = (rows: Awaited<ReturnType<SystemdPodmanHost['autoUpdate']>>) =>
          rows.find((r) => r.unit === unit);

        expect(row(await driver.autoUpdate({ dryRun: true }))).toMatchObject({
          unit,
          image: reference,
          policy: 'local',
          updated: 'false',
        });
        const second = await importAppImage(device, reference, { MSG: 'a2' });
        expect(row(await driver.autoUpdate({ dryRun: true }))?.updated).toBe('pending');
        expect((await driver.unitStatus(unit)).container?.imageId).toBe(first);

        const updated = await timed(`${style}: podman auto-update (restart on the new image)`, () =>
          driver.autoUpdate({ dryRun: false }),
        );
        expect(row(updated)).toMatchObject({
          updated: 'true',
          container: expect.stringContaining(name),
        });
        expect((await driver.unitStatus(unit)).container?.imageId).toBe(second);
        expect(await answer(name)).toBe('a2');
        await lab.clear();
      });
    });
  });
});
