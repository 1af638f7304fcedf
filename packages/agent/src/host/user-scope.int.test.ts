// User scope on real devices (Podman in Action ch. 7: services as a user, `systemctl --user`,
// lingering, `podman auto-update` and `journalctl --user` for the user's units). The built agent runs as
// podfleet-agent.service with User=ACCOUNT (docs/decisions/010-user-scope-agent.md) on a Debian 13
// device (Podman 5.4: Quadlet files in ~/.config/containers/systemd) and a Debian 12 one (Podman
// 4.3: service units in ~/.config/systemd/user), linked to a registry and a broker on the host.
// Everything reaches the agent as the controller sends it: signed manifests and commands over MQTT.
// Checks run as the account with setpriv, which opens no login session.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { topics, type CommandResponse, type DeviceEvent } from '@podfleet/shared';
import { AGENT_UNIT } from '../install/agent-unit-file.js';
import { controllerKey, signedManifest } from '../runtime/testing.js';
import { BrokerWatch } from '../session/testing.js';
import { addDeviceAccount, asAccount, type DeviceAccount } from './device-lab/device-account.js';
import { agentBindArgs, assertAgentBuilt, installAgent } from './device-lab/device-agent.js';
import { startLinkedBroker, type LinkedBroker } from './device-lab/device-broker.js';
import { deviceRootfs, type DeviceSuite } from './device-lab/device-rootfs.js';
import { bootDevice, type LabDevice } from './device-lab/lab-device.js';
import { startLabRegistry, type LabRegistry } from './device-lab/lab-registry.js';
import { parseShowProperties } from './systemd-podman-host.js';
import { appTarball, importAppImage, type AppBehaviour } from './device-lab/test-images.js';

const ACCOUNT = 'edge';
const SOCKET_PORT = 18090;
const timings: Record<string, number> = {};
const reasons: string[] = [];

/** Where each suite's agent writes the account's units (unitStyleFor its Podman). */
const DEVICES: { suite: DeviceSuite; unitFile: string }[] = [
  { suite: 'trixie', unitFile: '.config/containers/systemd/web.container' },
  { suite: 'bookworm', unitFile: '.config/systemd/user/web.service' },
];

afterAll(() => {
  const lines = Object.entries(timings).map(
    ([what, ms]) => `  ${what}: ${(ms / 1000).toFixed(2)}s`,
  );
  console.log(
    `user scope timings:\n${lines.join('\n')}\nrollback reasons:\n  ${reasons.join('\n  ')}`,
  );
});

describe.each(DEVICES)('user scope on a $suite device', ({ suite, unitFile }) => {
  const deviceId = `lab-user-${suite}`;
  // Where the lab itself stops Podman 4.3 from running the account's units (the test below says how).
  const blocked = suite === 'bookworm' && hostMountsCgroupV1();
  let device: LabDevice;
  let registry: LabRegistry;
  let broker: LinkedBroker;
  let watch: BrokerWatch;
  let account: DeviceAccount;
  let app: string;
  /** How many events the device had sent when it went down for its reboot. */
  let eventsBeforeReboot = 0;

  beforeAll(async () => {
    await assertAgentBuilt();
    await timed('device rootfs (debootstrap when cold)', () => deviceRootfs(suite));
    await timed('test app tarball (gcc when cold)', appTarball);
    device = await bootDevice({ suite, link: true, persistent: true, nspawnArgs: agentBindArgs() });
    timings[`${suite}: device boot (spawn → running)`] = device.bootMs;
    registry = await startLabRegistry(device);
    broker = await startLinkedBroker([device], await freePort());
    watch = await BrokerWatch.open(
      [topics.online, topics.events, topics.cmdResult].map((topic) => topic(deviceId)),
      broker.hostUrl,
    );
    account = await addDeviceAccount(device, ACCOUNT);
    app = `${registry.address}/podfleet/app`;
    await timed('3 images pushed to the registry', async () => {
      await push(`${app}:stable`, { MSG: 'v1' });
      await push(`${app}:sock`, { MSG: 'sock' });
      await push(`${app}:bad`, { MSG: 'bad', NO_NOTIFY: '1' });
    });
    await publishManifest(1, `${app}:stable`);
    // Enrollment's part: the config (scope: user) and the unit with User=; nothing lingers yet.
    expect(await linger()).toBe('no');
    await timed('agent enable --now (first apply, as the account)', () =>
      installAgent(
        device,
        {
          device: deviceId,
          brokerUrl: broker.deviceUrl(device),
          publicKeyPem: controllerKey.publicKeyPem,
          scope: 'user',
        },
        { user: account, enable: true },
      ),
    );
  });

  afterAll(async () => {
    const started = Date.now();
    await watch?.close();
    await device?.shutdown();
    await broker?.stop();
    await registry?.stop();
    timings[`${suite}: teardown`] = Date.now() - started;
  });

  // A failed check prints what the device said: the agent's and the account's journals.
  afterEach(async (context) => {
    if (context.task.result?.state !== 'fail' || !device) return;
    const tail = async (argv: string[]) =>
      (await device.run(argv, { timeoutMs: 10_000 }).catch((e: Error) => ({ stdout: e.message })))
        .stdout;
    const agent = await tail([
      'journalctl',
      '-u',
      AGENT_UNIT,
      '-n',
      '30',
      '-o',
      'cat',
      '--no-pager',
    ]);
    const user = await tail(
      asAccount(account, ['journalctl', '--user', '-b', '-n', '80', '-o', 'short-precise']),
    );
    console.log(`${suite}: ${context.task.name}\n--- agent\n${agent}\n--- ${ACCOUNT}\n${user}`);
  });

  /** The desired manifest, retained: web on `image` (registry auto-update) and sock (socket). */
  async function publishManifest(generation: number, image: string) {
    const manifest = signedManifest(deviceId, generation, [
      {
        name: 'web',
        image,
        notify: 'container',
        autoUpdate: 'registry',
        ready: { timeout: 6, settle: 2 },
      },
      {
        name: 'sock',
        image: `${app}:sock`,
        socket: { listen: [`127.0.0.1:${SOCKET_PORT}`] },
        ready: { timeout: 10, settle: 1 },
      },
    ]);
    await watch.publish(topics.desired(deviceId), JSON.stringify(manifest), true);
  }

  /** Imports the test app under a scratch name and pushes it as `reference` (as root). */
  async function push(reference: string, behaviour: AppBehaviour) {
    const local = 'localhost/build/app:latest';
    await importAppImage(device, local, behaviour);
    await device.exec(['podman', 'push', '-q', local, `docker://${reference}`]);
    await device.exec(['podman', 'rmi', local]);
  }

  const events = () => watch.json<DeviceEvent>(topics.events(deviceId));
  const eventAfter = <T extends DeviceEvent['type']>(mark: number, type: T) =>
    events()
      .slice(mark)
      .find((e): e is Extract<DeviceEvent, { type: T }> => e.type === type);
  /** Runs argv as the account (no login); stdout, trimmed. */
  const asUser = async (argv: string[]) => (await device.exec(asAccount(account, argv))).trim();
  const userCode = async (argv: string[]) =>
    (await device.run(asAccount(account, argv), { timeoutMs: 30_000 })).code;
  const userActive = (unit: string) =>
    device
      .run(asAccount(account, ['systemctl', '--user', 'is-active', unit]), { timeoutMs: 10_000 })
      .then((result) => result.stdout.trim());
  const answer = (name: string) => asUser(['podman', 'exec', name, 'nc', '127.0.0.1', '8080']);
  const linger = async () =>
    (
      await device.exec(['loginctl', 'show-user', ACCOUNT, '-p', 'Linger', '--value']).catch(
        // logind knows no such user before lingering or a login: not lingering.
        () => 'no\n',
      )
    ).trim();
  /** logind's login sessions: systemd 256+ lists the account's manager as one too, class manager. */
  async function logins(): Promise<string[]> {
    const list = await device.exec(['loginctl', 'list-sessions', '--no-legend']);
    const found: string[] = [];
    for (const id of list.split('\n').flatMap((line) => line.trim().split(/\s+/)[0] || [])) {
      const show = await device.exec(['loginctl', 'show-session', id, '-p', 'Class', '-p', 'Name']);
      const session = parseShowProperties(show);
      if (!session.get('Class')?.startsWith('manager')) {
        found.push(`${id}: ${session.get('Name')} (${session.get('Class')})`);
      }
    }
    return found;
  }

  /** Sends a command as the controller does and waits for its answer. */
  async function command(body: Record<string, unknown>, timeoutMs = 90_000) {
    const id = `${String(body.type)}-${Date.now()}`;
    await watch.publish(topics.cmd(deviceId), JSON.stringify({ id, ...body }));
    return watch.until(
      `the ${String(body.type)} answer`,
      () =>
        watch.json<CommandResponse>(topics.cmdResult(deviceId)).find((answer) => answer.id === id),
      timeoutMs,
    );
  }

  async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await work();
    } finally {
      timings[`${suite}: ${label}`] = Date.now() - started;
    }
  }

  it('runs the agent as the account, which set lingering and maps its subordinate ids', async () => {
    await watch.until('the first apply', () => eventAfter(0, 'apply'), 60_000);
    const agentPid = (
      await device.exec(['systemctl', 'show', '-p', 'MainPID', '--value', AGENT_UNIT])
    ).trim();
    expect((await device.exec(['ps', '-o', 'user=', '-p', agentPid])).trim()).toBe(ACCOUNT);
    // The agent's ExecStartPre=+loginctl enable-linger did it: logind keeps the manager, no login.
    expect(await linger()).toBe('yes');
    expect(await logins()).toEqual([]);
    expect(
      (await device.exec(['loginctl', 'show-user', ACCOUNT, '-p', 'State', '--value'])).trim(),
    ).toBe('lingering');
    expect(await userActive('default.target')).toBe('active');
    // The user namespace (made by the agent's first podman) maps the account's subordinate ids:
    // newuidmap ran, which NoNewPrivileges= would have stopped (agent-unit-file.ts).
    const [, start, count] = (await device.exec(['grep', `^${ACCOUNT}:`, '/etc/subuid']))
      .trim()
      .split(':');
    const uidMap = await asUser(['podman', 'unshare', 'cat', '/proc/self/uid_map']);
    expect(uidMap.split('\n').map((line) => line.trim().split(/\s+/).join(' '))).toEqual([
      `0 ${account.uid} 1`,
      `1 ${start} ${count}`,
    ]);
    expect(await asUser(['podman', 'info', '--format', '{{.Host.Security.Rootless}}'])).toBe(
      'true',
    );
  });

  it.runIf(blocked)(
    'Podman 4.3 cannot run the account’s units on this host: it leaves them for a scope (cgroup v1 hierarchies)',
    async () => {
      // The lab host mounts cgroup v1 hierarchies, which every process's /proc/self/cgroup lists
      // (at "/"). Podman 4.3 (containers/common before the fix that skips them) reads each as a
      // cgroup the account does not own and moves itself into podman-PID.scope: the unit's podman
      // and conmon leave web.service, whose notify protocol then fails.
      const cgroups = await device.exec(['cat', '/proc/self/cgroup']);
      expect(cgroups.split('\n').some((line) => /^\d+:[^:]+:\/$/.test(line))).toBe(true);
      expect(eventAfter(0, 'apply')).toMatchObject({ generation: 1, result: 'failed' });
      const journal = await asUser(['journalctl', '--user', '-u', 'web.service', '-o', 'cat']);
      expect(journal).toContain("web.service: Failed with result 'protocol'");
      const manager = await asUser(['journalctl', '--user', '-o', 'cat', '--no-pager']);
      expect(manager).toMatch(/Started podman-\d+\.scope/);
    },
  );

  it.skipIf(blocked)(
    "runs the services as the account's rootless units, from its home",
    async () => {
      expect(eventAfter(0, 'apply')).toMatchObject({ generation: 1, result: 'applied' });
      // The unit file is the account's, in its home; nothing in the system's directories.
      const path = `${account.home}/${unitFile}`;
      expect((await device.exec(['stat', '-c', '%U %a', path])).trim()).toBe(`${ACCOUNT} 644`);
      for (const system of [
        '/etc/containers/systemd/web.container',
        '/etc/systemd/system/web.service',
      ]) {
        expect((await device.run(['test', '-e', system], { timeoutMs: 10_000 })).code).toBe(1);
      }
      expect(await userActive('web.service')).toBe('active');
      const systemWeb = await device.run(['systemctl', 'is-active', 'web.service'], {
        timeoutMs: 10_000,
      });
      expect(systemWeb.stdout.trim()).toBe('inactive');
      // Rootless: the container is in the account's storage, not root's, and answers v1.
      expect(await userCode(['podman', 'container', 'exists', 'web'])).toBe(0);
      expect(
        (await device.run(['podman', 'container', 'exists', 'web'], { timeoutMs: 10_000 })).code,
      ).toBe(1);
      expect(await answer('web')).toBe('v1');
      // conmon runs as the account (the app as its subordinate root).
      const conmon = await device.exec(['ps', '-o', 'user=', '-C', 'conmon']);
      expect(new Set(conmon.trim().split(/\s+/))).toEqual(new Set([ACCOUNT]));
    },
  );

  it.skipIf(blocked)(
    "socket activation in the account's manager: no container until the first connection",
    async () => {
      expect(await userActive('sock.socket')).toBe('active');
      expect(await userActive('sock.service')).toBe('inactive');
      expect(await userCode(['podman', 'container', 'exists', 'sock'])).toBe(1);
      const connected = Date.now();
      expect((await device.connect(SOCKET_PORT)).trim()).toBe('sock');
      timings[`${suite}: socket: first connection served`] = Date.now() - connected;
      expect(await userActive('sock.service')).toBe('active');
      expect(await userCode(['podman', 'container', 'exists', 'sock'])).toBe(0);
    },
  );

  it.skipIf(blocked)(
    'podfleet logs: the agent answers with the service’s journalctl --user lines',
    async () => {
      const logs = await timed('logs command answered', () =>
        command({ type: 'logs', service: 'web' }),
      );
      expect(logs).toMatchObject({ ok: true, result: { type: 'logs', service: 'web' } });
      expect(JSON.stringify(logs)).toContain('tinyapp: listening on 8080');
      expect(JSON.stringify(logs)).toContain('tinyapp: sent READY=1');
    },
  );

  it.skipIf(blocked)(
    'health gate: an image that never sends READY=1 is rolled back in the account’s manager',
    async () => {
      const mark = events().length;
      await timed('never-ready apply → rolled back', async () => {
        await publishManifest(2, `${app}:bad`);
        return watch.until('the failed apply', () => eventAfter(mark, 'apply'), 90_000);
      });
      expect(eventAfter(mark, 'apply')).toMatchObject({ generation: 2, result: 'failed' });
      const rollback = eventAfter(mark, 'rollback');
      expect(rollback).toMatchObject({
        service: 'web',
        trigger: 'apply',
        fromImage: `${app}:bad`,
        toImage: `${app}:stable`,
        restored: true,
      });
      reasons.push(`${suite} apply: ${rollback?.reason ?? ''}`);
      expect(await asUser(['cat', `${account.home}/${unitFile}`])).toContain(`${app}:stable`);
      expect(await userActive('web.service')).toBe('active');
      expect(await answer('web')).toBe('v1');
      // The operator's rollout rolls the device back to its last good manifest (as the e2e does).
      const back = events().length;
      await publishManifest(3, `${app}:stable`);
      expect(
        await watch.until('generation 3 applied', () => eventAfter(back, 'apply'), 60_000),
      ).toMatchObject({ generation: 3, result: 'applied' });
    },
  );

  it.skipIf(blocked)(
    "registry auto-update of the account's unit: onto v2, and a crashing image rolled back",
    async () => {
      await timed('push v2', () => push(`${app}:stable`, { MSG: 'v2' }));
      const pending = await command({ type: 'auto-update', dryRun: true });
      expect(pending).toMatchObject({
        ok: true,
        result: { results: [{ unit: 'web.service', policy: 'registry', updated: 'pending' }] },
      });
      const updated = await timed('auto-update onto v2', () => command({ type: 'auto-update' }));
      expect(updated).toMatchObject({
        ok: true,
        result: { type: 'auto-update', results: [{ unit: 'web.service', updated: 'true' }] },
      });
      expect(await answer('web')).toBe('v2');

      // Exits 1 s after its READY=1: Podman's own check passes it, the agent's settle (2 s) does not.
      await push(`${app}:stable`, { MSG: 'crash', CRASH_AFTER_MS: '1000' });
      const mark = events().length;
      const crashed = await timed('auto-update onto a crashing image → rolled back', () =>
        command({ type: 'auto-update' }),
      );
      expect(crashed).toMatchObject({
        ok: true,
        result: { results: [{ unit: 'web.service', updated: 'rolled back' }] },
      });
      const rollback = await watch.until('the rollback event', () => eventAfter(mark, 'rollback'));
      expect(rollback).toMatchObject({ service: 'web', trigger: 'auto-update', restored: true });
      reasons.push(`${suite} auto-update: ${rollback.reason}`);
      expect(await userActive('web.service')).toBe('active');
      expect(await answer('web')).toBe('v2');
    },
  );

  it("reboot: the account's manager starts at boot with nobody logged in (lingering)", async () => {
    const mark = watch.seen.length;
    eventsBeforeReboot = events().length;
    device = await timed('reboot (poweroff → running)', () => device.reboot());
    expect(await logins()).toEqual([]);
    expect(await linger()).toBe('yes');
    expect(
      (await device.exec(['systemctl', 'is-active', `user@${account.uid}.service`])).trim(),
    ).toBe('active');
    expect(await userActive('default.target')).toBe('active');
    await watch.until('the agent online again', () =>
      watch.seen
        .slice(mark)
        .some((m) => m.topic === topics.online(deviceId) && m.payload === 'online')
        ? true
        : undefined,
    );
  });

  it.skipIf(blocked)("reboot: the account's services are back, started at boot", async () => {
    // `running` waited for user@UID.service, which waited for its default.target: web is up.
    expect(await userActive('web.service')).toBe('active');
    expect(await answer('web')).toBe('v2');
    // Socket activation survives the boot: the socket listens, nothing runs yet.
    expect(await userActive('sock.socket')).toBe('active');
    expect(await userActive('sock.service')).toBe('inactive');
    expect(await userCode(['podman', 'container', 'exists', 'sock'])).toBe(1);
    // By the device's monotonic clock, from its systemd's start: the account's manager is active
    // (READY=1 at its basic.target) before or while its services start.
    const bootAt = await device.exec([
      'systemctl',
      'show',
      '-p',
      'UserspaceTimestampMonotonic',
      '--value',
    ]);
    const since = (at: string) => (Number(at) - Number(bootAt)) / 1000;
    const managerAt = await device.exec([
      'systemctl',
      'show',
      '-p',
      'ActiveEnterTimestampMonotonic',
      '--value',
      `user@${account.uid}.service`,
    ]);
    const webAt = await asUser([
      'systemctl',
      '--user',
      'show',
      '-p',
      'ActiveEnterTimestampMonotonic',
      '--value',
      'web.service',
    ]);
    timings[`${suite}: boot: systemd start → user@${account.uid}.service active`] =
      since(managerAt);
    timings[`${suite}: boot: systemd start → web.service active (user manager)`] = since(webAt);
    // systemd started everything at boot: the agent had nothing to apply or roll back.
    expect(
      events()
        .slice(eventsBeforeReboot)
        .filter((e) => e.type === 'apply' || e.type === 'rollback'),
    ).toEqual([]);
  });
});

/**
 * Whether this machine mounts cgroup v1 hierarchies (a hybrid host): the kernel lists them in every
 * process's /proc/self/cgroup, the devices' included. A real Debian 12 device has cgroup2 alone.
 */
function hostMountsCgroupV1(): boolean {
  return readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .some((line) => line !== '' && !line.startsWith('0::'));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
