// podfleet-agent.service on a real device: systemd 257 in a systemd-nspawn container of Debian 13
// (device-lab/, docs/device-lab.md) runs the built agent (the repo and the host's node bind-mounted
// read-only) under the rendered unit, against a Mosquitto in the device's network namespace. The
// agent's READY=1, STATUS= and WATCHDOG=1 go through systemd-notify (sd-notify.ts); the checks are
// systemd's own view of the unit (systemctl show) and what the broker hears.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics, type CommandResponse } from '@podfleet/shared';
import {
  AGENT_CONFIG_PATH,
  AGENT_UNIT_PATH as UNIT_PATH,
  REPO,
  agentBindArgs,
  agentConfigYaml,
  assertAgentBuilt,
  installAgent,
  writeInDevice as writeInto,
} from '../host/device-lab/device-agent.js';
import { startDeviceBroker, type DeviceBroker } from '../host/device-lab/device-broker.js';
import { deviceRootfs } from '../host/device-lab/device-rootfs.js';
import { bootDevice, type LabDevice } from '../host/device-lab/lab-device.js';
import { appTarball, importAppImage } from '../host/device-lab/test-images.js';
import { AGENT_UNIT } from '../install/agent-unit-file.js';
import { BrokerWatch } from '../session/testing.js';
import { READY_GRACE_MS } from './agent-unit.js';
import { controllerKey, signedManifest } from './testing.js';

const AGENT = join(REPO, 'packages/agent');
const DEVICE_ID = 'lab-unit-1';
const APP = 'localhost/podfleet/app:v1';
const WATCHDOG_SEC = 4;
const timings: Record<string, number> = {};

let device: LabDevice;
let broker: DeviceBroker;
let watch: BrokerWatch;

beforeAll(async () => {
  await assertAgentBuilt();
  await timed('device rootfs (debootstrap when cold)', deviceRootfs);
  await timed('test app tarball (gcc when cold)', appTarball);
  device = await bootDevice({ nspawnArgs: agentBindArgs() });
  timings['device boot (spawn → running)'] = device.bootMs;
  broker = await startDeviceBroker(device);
  watch = await BrokerWatch.open(
    [topics.online(DEVICE_ID), topics.events(DEVICE_ID), topics.cmdResult(DEVICE_ID)],
    broker.hostUrl,
  );
  await importAppImage(device, APP, { MSG: 'v1' });
  const manifest = signedManifest(DEVICE_ID, 1, [
    {
      name: 'web',
      image: APP,
      notify: 'container',
      ready: { timeout: 10, settle: 1 },
      autoUpdate: 'local',
    },
  ]);
  await watch.publish(topics.desired(DEVICE_ID), JSON.stringify(manifest), true);
  await installAgent(device, agentConfig(broker.deviceUrl), { watchdogSec: WATCHDOG_SEC });
});

afterAll(async () => {
  const started = Date.now();
  await watch?.close();
  await device?.shutdown();
  await broker?.stop();
  timings['device shutdown'] = Date.now() - started;
  const lines = Object.entries(timings).map(
    ([what, ms]) => `  ${what}: ${(ms / 1000).toFixed(2)}s`,
  );
  console.log(`agent unit timings:\n${lines.join('\n')}`);
});

const agentConfig = (brokerUrl: string) => ({
  device: DEVICE_ID,
  brokerUrl,
  publicKeyPem: controllerKey.publicKeyPem,
});
const writeInDevice = (path: string, text: string) => writeInto(device, path, text);

type Show = Record<string, string>;

/** systemctl show of the agent's unit (or another), as a record. */
async function show(unit = AGENT_UNIT, properties = SHOWN): Promise<Show> {
  const out = await device.exec(['systemctl', 'show', '-p', properties.join(','), unit]);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}
const SHOWN = ['ActiveState', 'SubState', 'StatusText', 'MainPID', 'NRestarts', 'Result'];

/** Polls the unit until `done` says so; every distinct (ActiveState, StatusText) on the way. */
async function until(what: string, done: (s: Show) => boolean, timeoutMs = 60_000) {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await show();
    const step = `${state.ActiveState} | ${state.StatusText}`;
    if (seen.at(-1) !== step) seen.push(step);
    if (done(state)) return { state, seen };
    if (Date.now() > deadline) throw new Error(`${what}: timed out; seen ${seen.join(' → ')}`);
    await sleep(50);
  }
}

const answers = () => watch.json<CommandResponse>(topics.cmdResult(DEVICE_ID));
const journal = () => device.exec(['journalctl', '-u', AGENT_UNIT, '-o', 'cat', '--no-pager']);
const onlineSince = (index: number) =>
  watch.seen
    .slice(index)
    .filter((m) => m.topic === topics.online(DEVICE_ID))
    .map((m) => m.payload);

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings[label] = Date.now() - started;
  }
}

describe('podfleet-agent.service on a systemd 257 device', () => {
  it('passes systemd-analyze verify, as rendered here and as deploy/ ships it', async () => {
    // verify exits 0 even on unknown keys: silence is the pass.
    expect(await device.exec(['systemd-analyze', 'verify', UNIT_PATH])).toBe('');
    const shipped = await readFile(join(AGENT, 'deploy', AGENT_UNIT), 'utf8');
    await writeInDevice(`/run/verify/${AGENT_UNIT}`, shipped);
    const result = await device.run(['systemd-analyze', 'verify', `/run/verify/${AGENT_UNIT}`], {
      timeoutMs: 30_000,
    });
    expect({ code: result.code, said: `${result.stdout}${result.stderr}` }).toEqual({
      code: 0,
      said: '',
    });
  });

  it('turns active only on READY=1, after the first reconcile, and says so in its status', async () => {
    const { state, seen } = await timed('start → active (READY=1)', async () => {
      await device.exec(['systemctl', 'start', '--no-block', AGENT_UNIT]);
      return until('active', (s) => s.ActiveState === 'active');
    });
    console.log(`agent unit on its way to active:\n  ${seen.join('\n  ')}`);
    // Our STATUS= while systemd still waited for READY=1 (online before it), then active for good.
    const active = seen.findIndex((step) => step.startsWith('active | '));
    expect(
      seen.slice(0, active).some((step) => /^activating \| starting: online /.test(step)),
    ).toBe(true);
    expect(seen.slice(active).every((step) => step.startsWith('active | '))).toBe(true);
    expect(state.StatusText).toBe(
      'online (mqtt://127.0.0.1:1883); generation 1, 1/1 services ready',
    );
    expect(state.NRestarts).toBe('0');

    // systemd's own clock: the service it manages was active before the agent said READY=1, and
    // the agent's process ran for the whole first reconcile (settle 1 s) before it was active.
    const stamps = ['ExecMainStartTimestampMonotonic', 'ActiveEnterTimestampMonotonic'];
    const agent = await show(AGENT_UNIT, stamps);
    const web = await show('web.service', ['ActiveState', 'ActiveEnterTimestampMonotonic']);
    expect(web.ActiveState).toBe('active');
    const activeAfterMs =
      (Number(agent.ActiveEnterTimestampMonotonic) -
        Number(agent.ExecMainStartTimestampMonotonic)) /
      1000;
    timings['agent process start → READY=1 (systemd clock)'] = activeAfterMs;
    expect(activeAfterMs).toBeGreaterThan(1000);
    expect(Number(web.ActiveEnterTimestampMonotonic)).toBeLessThan(
      Number(agent.ActiveEnterTimestampMonotonic),
    );
    await watch.until('online', () => (onlineSince(0).at(-1) === 'online' ? true : undefined));
    await watch.until('the apply event', () =>
      watch
        .json<{ type: string; generation: number }>(topics.events(DEVICE_ID))
        .find((e) => e.type === 'apply' && e.generation === 1),
    );
  });

  it("stops and disables Podman's own auto-update (boot service and daily timer) once a service asks for auto-update", async () => {
    // Debian 12 enables podman-auto-update.service and .timer (ungated runs, then an image
    // prune); here an operator does, then the agent restarts.
    const podmans = ['podman-auto-update.timer', 'podman-auto-update.service'];
    await device.exec(['systemctl', 'enable', ...podmans]);
    await device.exec(['systemctl', 'start', 'podman-auto-update.timer']);
    await device.exec(['systemctl', 'restart', AGENT_UNIT]);
    await until('the agent active again', (s) => s.ActiveState === 'active');
    for (const unit of podmans) {
      expect(await show(unit, ['ActiveState', 'UnitFileState'])).toMatchObject({
        UnitFileState: 'disabled',
      });
      expect(await journal()).toContain(`${unit} stopped and disabled`);
    }
    expect((await show('podman-auto-update.timer', ['ActiveState'])).ActiveState).toBe('inactive');
  });

  it('runs podman auto-update and journalctl for its commands, under the unit hardening', async () => {
    // A new image under the same tag: `podman auto-update` (local policy) restarts web.service
    // through systemd, the agent's gate checks it, the answer says updated.
    const second = await importAppImage(device, APP, { MSG: 'v2' });
    const response = await timed('auto-update command answered', async () => {
      await watch.publish(
        topics.cmd(DEVICE_ID),
        JSON.stringify({ id: 'au-1', type: 'auto-update' }),
      );
      return watch.until(
        'the auto-update answer',
        () => answers().find((answer) => answer.id === 'au-1'),
        60_000,
      );
    });
    expect(response).toMatchObject({
      ok: true,
      result: { type: 'auto-update', results: [{ unit: 'web.service', updated: 'true' }] },
    });
    const image = await device.exec([
      'podman',
      'container',
      'inspect',
      'web',
      '--format',
      '{{.Image}}',
    ]);
    expect(image.trim()).toBe(second);
    await watch.publish(
      topics.cmd(DEVICE_ID),
      JSON.stringify({ id: 'logs-1', type: 'logs', service: 'web' }),
    );
    const logs = await watch.until('the logs answer', () =>
      answers().find((answer) => answer.id === 'logs-1'),
    );
    expect(logs).toMatchObject({ ok: true, result: { type: 'logs', service: 'web' } });
    expect(JSON.stringify(logs)).toContain('tinyapp: listening on 8080');
    expect((await show()).NRestarts).toBe('0');
  });

  it('stays up past WatchdogSec on its keep-alives', async () => {
    const before = await show(AGENT_UNIT, [
      'MainPID',
      'WatchdogUSec',
      'WatchdogTimestampMonotonic',
    ]);
    expect(before.WatchdogUSec).toBe(`${WATCHDOG_SEC}s`);
    await sleep(2.5 * WATCHDOG_SEC * 1000);
    const after = await show(AGENT_UNIT, [...SHOWN, 'WatchdogTimestampMonotonic']);
    expect(after).toMatchObject({ ActiveState: 'active', NRestarts: '0', MainPID: before.MainPID });
    // The last WATCHDOG=1 systemd took is recent: within the keep-alive period (half of it).
    const age = await device.exec(['cat', '/proc/uptime']);
    const sinceKeepAliveMs =
      Number(age.split(' ')[0]) * 1000 - Number(after.WatchdogTimestampMonotonic) / 1000;
    expect(Number(after.WatchdogTimestampMonotonic)).toBeGreaterThan(
      Number(before.WatchdogTimestampMonotonic),
    );
    expect(sinceKeepAliveMs).toBeLessThan(WATCHDOG_SEC * 1000);
    expect(await journal()).not.toMatch(/Watchdog timeout/);
  });

  it('is restarted by systemd after SIGKILL and comes back online', async () => {
    const { MainPID: pid } = await show();
    const mark = watch.seen.length;
    const { state } = await timed('SIGKILL → active again', async () => {
      await device.exec(['kill', '-KILL', pid!]);
      return until('restarted', (s) => s.ActiveState === 'active' && s.NRestarts === '1');
    });
    expect(state.MainPID).not.toBe(pid);
    expect(await journal()).toMatch(/Main process exited, code=killed, status=9\/KILL/);
    // The broker sent the last will when the connection died, then the new agent said online.
    await watch.until('offline, then online', () =>
      onlineSince(mark).join(',') === 'offline,online' ? true : undefined,
    );
  });

  it('is killed by the watchdog when hung (SIGSTOP) and restarted', async () => {
    const { MainPID: pid } = await show();
    const mark = watch.seen.length;
    const { state } = await timed('SIGSTOP → watchdog → active again', async () => {
      await device.exec(['kill', '-STOP', pid!]);
      return until('restarted', (s) => s.ActiveState === 'active' && s.NRestarts === '2');
    });
    expect(state.MainPID).not.toBe(pid);
    const log = await journal();
    expect(log).toMatch(new RegExp(`Watchdog timeout \\(limit ${WATCHDOG_SEC}s\\)!`));
    expect(log).toMatch(/Failed with result 'watchdog'/);
    await watch.until('offline, then online', () =>
      onlineSince(mark).join(',') === 'offline,online' ? true : undefined,
    );
  });

  it('stops cleanly on systemctl stop, saying offline itself', async () => {
    const mark = watch.seen.length;
    await timed('systemctl stop', () => device.exec(['systemctl', 'stop', AGENT_UNIT]));
    const state = await show(AGENT_UNIT, ['ActiveState', 'Result', 'ExecMainStatus']);
    expect(state).toEqual({ ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' });
    // Its own `offline`, and the will's too if the broker saw no DISCONNECT (forced end).
    await watch.until('offline', () => (onlineSince(mark).length > 0 ? true : undefined));
    expect(new Set(onlineSince(mark))).toEqual(new Set(['offline']));
  });

  it('turns active at the grace without a broker, keeping what runs', async () => {
    // Nothing listens on this port in the device: every connection attempt is refused.
    await writeInDevice(AGENT_CONFIG_PATH, agentConfigYaml(agentConfig('mqtt://127.0.0.1:1884')));
    const { state, seen } = await timed('start → active without a broker', async () => {
      await device.exec(['systemctl', 'start', '--no-block', AGENT_UNIT]);
      return until('active', (s) => s.ActiveState === 'active', 2 * READY_GRACE_MS);
    });
    console.log(`agent unit without a broker:\n  ${seen.join('\n  ')}`);
    expect(state.StatusText).toBe(
      'offline, retrying mqtt://127.0.0.1:1884; generation 1, 1/1 services ready',
    );
    const stamps = await show(AGENT_UNIT, [
      'ExecMainStartTimestampMonotonic',
      'ActiveEnterTimestampMonotonic',
    ]);
    const readyAfterMs =
      (Number(stamps.ActiveEnterTimestampMonotonic) -
        Number(stamps.ExecMainStartTimestampMonotonic)) /
      1000;
    timings['agent process start → READY=1 without a broker'] = readyAfterMs;
    expect(readyAfterMs).toBeGreaterThanOrEqual(READY_GRACE_MS);
    expect(readyAfterMs).toBeLessThan(READY_GRACE_MS + 5_000);
    // The service the agent manages ran all along.
    expect((await show('web.service', ['ActiveState', 'NRestarts'])).ActiveState).toBe('active');
    await device.exec(['systemctl', 'stop', AGENT_UNIT]);
  });
});
