// `podfleet enroll ssh` against a real sshd in a real device: Debian 13 with systemd 257, Podman
// 5.4 and openssh-server in a systemd-nspawn device (packages/agent/src/host/device-lab,
// docs/device-lab.md), reached over a veth link; host keys made at the device's boot. The device
// gets the host's node binary and nothing else of the repo: the agent comes from the bundle the
// enrollment copies. The controller runs on a scratch Postgres with the credential issuers
// (`controller` key, per-device Mosquitto accounts) on a Mosquitto with deploy/mosquitto's ACL,
// so the device is online only with the account the enrollment issued it.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeInDevice } from '../../../../agent/src/host/device-lab/device-agent.js';
import { deviceRootfs } from '../../../../agent/src/host/device-lab/device-rootfs.js';
import { bootDevice, type LabDevice } from '../../../../agent/src/host/device-lab/lab-device.js';
import { ensureAdminToken } from '../../auth/bootstrap.js';
import { brokerAccessFromEnv } from '../../broker-access/config.js';
import { brokerCredentialIssuer } from '../../broker-access/issuer.js';
import { mosquittoPasswordMatches } from '../../broker-access/mosquitto-password.js';
import {
  freePort,
  startManagedMosquitto,
  type ManagedMosquitto,
} from '../../broker-access/testing.js';
import { ApiClient } from '../../cli/api-client.js';
import { controllerApi } from '../../cli/enroll.js';
import type { CliRun } from '../../cli/testing.js';
import { apiRoutes } from '../../http/routes.js';
import { controllerKeyIssuer } from '../../keys/controller-key-issuer.js';
import { loadSigningKey } from '../../keys/signing-key.js';
import {
  Cleanups,
  controllerSite,
  mustRun,
  operatorAt,
  type Operator,
} from '../../rollouts/e2e/harness.js';
import { readServeConfig } from '../../serve/config.js';
import { startController, type RunningController } from '../../serve/serve.js';
import { repoAgentBundle } from './agent-bundle.js';
import { AGENT_ENTRY, CONFIG_PATH, INSTALLED_PATHS, PASSWORD_PATH } from './agent-files.js';
import { enrollSsh } from './enroll-ssh.js';

const cleanups = new Cleanups();
const timings: Record<string, number> = {};
const DEVICE = 'lab-ssh-1';

let device: LabDevice;
let broker: ManagedMosquitto;
let controller: RunningController;
/** Operators' accounts on the device besides root: with passwordless sudo, and without. */
const SUDO_USER = 'pfadmin';
const PLAIN_USER = 'pfplain';
let operator: Operator;
let work: string;
let identity: string;
/** The device's own ed25519 host key, as `ssh-keygen -lf` prints it in the device. */
let fingerprint: string;
let brokerUrl: string;
let target: string;
let rootfs: string;
let adminToken: string;

beforeAll(async () => {
  rootfs = await timed('device rootfs (debootstrap when cold)', () => deviceRootfs());
  // The host's node only: the agent must come from the enrollment's bundle.
  const nodeOnly = [`--bind-ro=${process.execPath}:/usr/local/bin/node`];
  device = await bootDevice({ link: true, nspawnArgs: nodeOnly });
  cleanups.add(() => device.shutdown());
  timings['device boot (spawn → running, host keys made)'] = device.bootMs;
  target = `root@${device.link!.address}`;

  work = await mkdtemp(join(tmpdir(), 'pf-enroll-ssh-'));
  cleanups.add(() => rm(work, { recursive: true, force: true }));
  identity = join(work, 'id_ed25519');
  await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', identity]);
  await device.exec(['install', '-d', '-m', '0700', '/root/.ssh']);
  await writeInDevice(
    device,
    '/root/.ssh/authorized_keys',
    await readFile(`${identity}.pub`, 'utf8'),
  );
  await device.exec(['chmod', '0600', '/root/.ssh/authorized_keys']);
  // Two operators' accounts: one that may run anything through sudo without a password (as an
  // image's default user often may), one that may not.
  for (const user of [SUDO_USER, PLAIN_USER]) {
    await device.exec(['useradd', '--create-home', '--shell', '/bin/sh', user]);
    await device.exec(['install', '-d', '-m', '0700', '-o', user, `/home/${user}/.ssh`]);
    await writeInDevice(
      device,
      `/home/${user}/.ssh/authorized_keys`,
      await readFile(`${identity}.pub`, 'utf8'),
    );
    await device.exec(['chown', user, `/home/${user}/.ssh/authorized_keys`]);
  }
  await writeInDevice(
    device,
    `/etc/sudoers.d/${SUDO_USER}`,
    `${SUDO_USER} ALL=(ALL) NOPASSWD:ALL\n`,
  );
  await device.exec(['chmod', '0440', `/etc/sudoers.d/${SUDO_USER}`]);
  fingerprint = (
    await device.exec(['ssh-keygen', '-lf', '/etc/ssh/ssh_host_ed25519_key.pub'])
  ).split(' ')[1]!;

  // Mosquitto with deploy/mosquitto's ACL and password file, also on the host's end of the link.
  // The controller's account is on the controllers' listener, as the compose entrypoint writes it.
  const login = {
    username: 'podfleet-controller',
    password: randomBytes(18).toString('base64url'),
  };
  const devicePort = await freePort();
  broker = await startManagedMosquitto(
    (_dir, listener) => `listener ${devicePort} ${device.link!.hostAddress}\n${listener.devices}\n`,
    { controllers: { [login.username]: login.password } },
  );
  cleanups.add(() => broker.stop());
  brokerUrl = `mqtt://${device.link!.hostAddress}:${devicePort}`;

  const site = await controllerSite(cleanups, 60);
  Object.assign(site.env, {
    MQTT_URL: `mqtt://${login.username}:${login.password}@127.0.0.1:${broker.controllerPort}`,
    PODFLEET_BROKER_PASSWORD_FILE: broker.passwordFile,
    PODFLEET_BROKER_PID_FILE: broker.pidFile,
  });
  const config = readServeConfig(site.env);
  // The key startController loads (made here first, so that its issuer can be built).
  const { key } = loadSigningKey(config, config.PODFLEET_DATA);
  const issuers = [
    controllerKeyIssuer(key),
    brokerCredentialIssuer(brokerAccessFromEnv(site.env)!),
  ];
  controller = await startController(
    config,
    apiRoutes({ enroll: { issuers } }),
    pino({ level: 'silent' }),
  );
  cleanups.add(() => controller.close());
  adminToken = (await ensureAdminToken(controller.db.prisma))!;
  operator = operatorAt(controller.url, adminToken);
  await mustRun(operator.cli('groups', 'create', 'lab'), 'groups create');
}, 600_000);

afterAll(async () => {
  const started = Date.now();
  await cleanups.run();
  timings['teardown'] = Date.now() - started;
  const lines = Object.entries(timings).map(
    ([what, ms]) => `  ${what}: ${(ms / 1000).toFixed(2)}s`,
  );
  console.log(`enroll ssh timings:\n${lines.join('\n')}`);
});

async function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await work();
  } finally {
    timings[label] = Date.now() - started;
  }
}

/** `podfleet enroll ssh root@DEVICE …` as the operator runs it, with the test's key. */
function enroll(label: string, ...argv: string[]): Promise<CliRun> {
  return enrollAs(target, label, ...argv);
}

/** The same as another user of the device (`USER@ADDRESS`). */
function enrollAs(login: string, label: string, ...argv: string[]): Promise<CliRun> {
  return timed(label, () =>
    operator.cli(
      'enroll', 'ssh', login, '--identity', identity, '--device', DEVICE,
      '--broker', brokerUrl, ...argv,
    ),
  ); // prettier-ignore
}

const knownHosts = (name: string) => join(work, name);

/** Nothing of an agent on the device or of the device on the controller. */
async function expectNothingLeft(): Promise<void> {
  const present = await device.run([
    'sh', '-c', 'for f; do [ -e "$f" ] && echo "$f"; done; true', 'sh',
    ...INSTALLED_PATHS, '/etc/podfleet', '/opt/podfleet',
  ], { timeoutMs: 10_000 }); // prettier-ignore
  expect(present.stdout.trim()).toBe('');
  expect(await show('LoadState')).toBe('not-found');
  const agents = await device.run(['pgrep', '-f', AGENT_ENTRY], { timeoutMs: 10_000 });
  expect(agents.stdout.trim()).toBe('');
  expect(await controller.db.prisma.device.count({ where: { id: DEVICE } })).toBe(0);
  expect(await controller.db.prisma.brokerCredential.count()).toBe(0);
  expect(await readFile(broker.passwordFile, 'utf8')).not.toContain(`${DEVICE}:`);
}

async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${ms}ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const show = async (property: string) =>
  (
    await device.exec(['systemctl', 'show', '-p', property, '--value', 'podfleet-agent.service'])
  ).trim();

describe('podfleet enroll ssh (real sshd, real device)', () => {
  it('prints its help with an example', async () => {
    const help = await operator.cli('enroll', 'ssh', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--accept-new-host-key');
    expect(help.stdout).toContain('Example:');
  });

  it('refuses bad input with exit 2, and the identity route to anyone but an admin', async () => {
    const bad = await operator.cli('enroll', 'ssh', 'no-user-here', '--broker', brokerUrl);
    expect(bad).toMatchObject({
      code: 2,
      stderr: 'podfleet: target: not USER@HOST: "no-user-here"\n',
    });
    const pin = await operator.cli('enroll', 'ssh', target, '--host-key', 'MD5:aa:bb');
    expect(pin.code).toBe(2);
    expect(pin.stderr).toContain('--host-key');
    for (const role of ['viewer', 'operator']) {
      const issued = await mustRun(
        operator.cli('tokens', 'create', `enroll-${role}`, '--role', role, '--json'),
        'tokens create',
      );
      const { token } = JSON.parse(issued.stdout) as { token: string };
      const refused = await operatorAt(controller.url, token).cli(
        'enroll', 'ssh', target, '--identity', identity, '--device', DEVICE, '--broker', brokerUrl,
        '--host-key', fingerprint,
      ); // prettier-ignore
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('step identity failed: 403');
    }
    await expectNothingLeft();
  });

  it('has host keys of its own: none in the cached rootfs, made at boot', async () => {
    expect(existsSync(join(rootfs, 'etc/ssh/ssh_host_ed25519_key'))).toBe(false);
    expect(fingerprint).toMatch(/^SHA256:/);
  });

  it('refuses an unknown host key without --accept-new-host-key, and records nothing', async () => {
    const run = await enroll('unknown host key refused', '--known-hosts', knownHosts('empty'));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `step connect failed: host key of ${device.link!.address} is unknown: ssh-ed25519 ${fingerprint}`,
    );
    expect(run.stdout).toContain('[1/8] connect');
    expect(run.stdout).not.toContain('[2/8]');
    await expect(readFile(knownHosts('empty'), 'utf8')).rejects.toThrow(/ENOENT/);
    await expectNothingLeft();
  });

  it('refuses a --host-key fingerprint that is not the host’s', async () => {
    const other = `SHA256:${randomBytes(32).toString('base64').replace(/=+$/, '')}`;
    const run = await enroll('--host-key mismatch refused', '--host-key', other);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      `host key mismatch: ${device.link!.address} presented ssh-ed25519 ${fingerprint}, not the --host-key ${other}`,
    );
    await expectNothingLeft();
  });

  it('refuses a changed host key always, --accept-new-host-key or not', async () => {
    const otherKey = join(work, 'other_host_key');
    await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const [type, blob] = (await readFile(`${otherKey}.pub`, 'utf8')).split(' ');
    const stale = `${device.link!.address} ${type} ${blob}\n`;
    await writeFile(knownHosts('stale'), stale);
    for (const flags of [[], ['--accept-new-host-key']]) {
      const run = await enroll(
        'changed host key refused',
        '--known-hosts',
        knownHosts('stale'),
        ...flags,
      );
      expect(run.code).toBe(1);
      expect(run.stderr).toContain(`host key of ${device.link!.address} has CHANGED`);
      expect(run.stderr).toContain(fingerprint);
    }
    expect(await readFile(knownHosts('stale'), 'utf8')).toBe(stale);
    await expectNothingLeft();
  });

  it('stops at the check when podman does not work, having written nothing', async () => {
    await device.exec(['mount', '--bind', '/bin/false', '/usr/bin/podman']);
    try {
      const run = await enroll('check fails (podman)', '--host-key', fingerprint);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('step check failed: podman: `podman --version` exited 1');
      expect(run.stdout).not.toContain('[3/8]');
    } finally {
      await device.exec(['umount', '/usr/bin/podman']);
    }
    await expectNothingLeft();
  });

  it('undoes every step when the agent never comes online', async () => {
    // A broker port nobody listens on: install, config, unit and start succeed, online does not.
    const run = await enroll(
      'online times out → undone',
      '--known-hosts', knownHosts('kh'), '--accept-new-host-key',
      '--broker', `mqtt://${device.link!.hostAddress}:9`, '--timeout', '6',
    ); // prettier-ignore
    console.log(`enroll ssh, a failed step undone:\n${run.stdout}${run.stderr}`);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /step online failed: not online within 6s \(podfleet-agent\.service activating/,
    );
    for (const undo of [
      'stopped and disabled podfleet-agent.service',
      'removed /etc/systemd/system/podfleet-agent.service',
      'removed /etc/podfleet',
      'removed /opt/podfleet',
      `deleted device ${DEVICE} on the controller`,
    ]) {
      expect(run.stderr).toContain(undo);
    }
    expect(run.stdout).toContain('[7/8] start');
    await expectNothingLeft();
    // Trusted on first use, and recorded as ssh(1) would.
    const recorded = await readFile(knownHosts('kh'), 'utf8');
    expect(recorded).toMatch(
      new RegExp(`^${device.link!.address.replace(/\./g, '\\.')} ssh-ed25519 \\S+\\n$`),
    );
  });

  it('undoes what was done when interrupted (Ctrl-C) before the device is online', async () => {
    const interrupt = new AbortController();
    const lines: string[] = [];
    const started = Date.now();
    const enrolling = enrollSsh({
      user: 'root',
      host: device.link!.address,
      port: 22,
      privateKey: await readFile(identity),
      hostKey: { knownHostsFile: knownHosts('kh'), acceptNew: false },
      device: DEVICE,
      labels: {},
      reissue: false,
      brokerUrl,
      minFree: {},
      onlineTimeoutMs: 60_000,
      bundle: repoAgentBundle,
      controller: controllerApi(new ApiClient({ url: controller.url, token: adminToken })),
      print: (line) => {
        lines.push(line);
        // What the CLI does on SIGINT, once the agent was started.
        if (line.startsWith('[8/8] online')) interrupt.abort();
      },
      signal: interrupt.signal,
    });
    await expect(enrolling).rejects.toThrow(
      /^step online failed: interrupted \(undone: stopped and disabled/,
    );
    timings['interrupted → undone'] = Date.now() - started;
    expect(lines).toContain(
      `  undo: deleted device ${DEVICE} on the controller (credentials revoked)`,
    );
    await expectNothingLeft();
  });

  it('stops at the check as a user who may not use sudo, having written nothing', async () => {
    const run = await enrollAs(
      `${PLAIN_USER}@${device.link!.address}`,
      'user without sudo refused',
      '--known-hosts',
      knownHosts('kh'),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('step check failed');
    expect(run.stderr).toMatch(/sudo/);
    await expectNothingLeft();
  });

  it('enrolls the device as a sudo user: online with the identity it was issued, the agent its unit', async () => {
    const run = await enrollAs(
      `${SUDO_USER}@${device.link!.address}`,
      'enrollment as a sudo user (connect → online)',
      '--known-hosts', knownHosts('kh'), '--group', 'lab', '--labels', 'site=lab,tier=edge', '--json',
    ); // prettier-ignore
    if (run.code !== 0) throw new Error(run.stderr);
    console.log(`enroll ssh progress:\n${run.stderr}`);
    const result = JSON.parse(run.stdout);
    expect(result).toMatchObject({
      device: DEVICE,
      hostKey: { type: 'ssh-ed25519', fingerprint, trust: 'known' },
      identity: { created: true, issued: ['controller', 'broker'] },
      unit: 'podfleet-agent.service',
      online: true,
    });
    expect(result.facts).toMatchObject({ systemd: { version: 257 }, arch: 'x86_64' });
    expect(result.facts.podman).toMatch(/^5\.4\./);
    expect(result.steps.map((s: { step: string }) => s.step)).toEqual([
      'connect', 'check', 'identity', 'install', 'config', 'unit', 'start', 'online',
    ]); // prettier-ignore

    // The controller: online, labels, group, audited; the broker account is the one on the device.
    const row = await controller.db.prisma.device.findUniqueOrThrow({
      where: { id: DEVICE },
      include: { memberships: true },
    });
    expect(row.online).toBe(true);
    expect(row.labels).toEqual({ site: 'lab', tier: 'edge' });
    expect(row.memberships.map((m) => m.groupName)).toEqual(['lab']);
    const audit = await controller.db.prisma.auditEntry.findMany({
      where: { target: `device/${DEVICE}` },
      orderBy: { at: 'asc' },
    });
    expect(audit.map((a) => a.action)).toEqual([
      'device.identity.issue', 'device.delete', // never online
      'device.identity.issue', 'device.delete', // interrupted
      'device.identity.issue',
    ]); // prettier-ignore
    expect(JSON.stringify(audit.map((a) => a.details))).not.toMatch(/password/i);
    const password = (await device.exec(['cat', PASSWORD_PATH])).trim();
    const credential = await controller.db.prisma.brokerCredential.findUniqueOrThrow({
      where: { deviceId: DEVICE },
    });
    expect(mosquittoPasswordMatches(password, credential.passwordHash)).toBe(true);
    const config = await device.exec(['cat', CONFIG_PATH]);
    expect(config).toContain(`device: ${DEVICE}`);
    expect(config).toContain(`passwordFile: ${PASSWORD_PATH}`);
    expect(config).toContain(controller.publicKeyPem.split('\n')[1]);
    expect(await device.exec(['stat', '-c', '%a', CONFIG_PATH, PASSWORD_PATH])).toBe('600\n600\n');

    // The device: the unit active and enabled, its main process node running the bundle.
    expect(await show('ActiveState')).toBe('active');
    expect(await show('UnitFileState')).toBe('enabled');
    const pid = await show('MainPID');
    const cmdline = (await device.exec(['cat', `/proc/${pid}/cmdline`])).split('\0');
    expect(cmdline.slice(1, 3)).toEqual([AGENT_ENTRY, 'run']);
    // Its first state report: the bundled agent's version, the device's Podman and systemd.
    const reported = await waitFor(async () => {
      const seen = await controller.db.prisma.device.findUniqueOrThrow({ where: { id: DEVICE } });
      return seen.agentVersion ? seen : undefined;
    });
    expect(reported).toMatchObject({ agentVersion: '0.1.0', systemdVersion: '257' });
  });

  it('refuses to enroll a device that has an agent, and leaves that agent alone', async () => {
    const pid = await show('MainPID');
    const run = await enroll(
      'already enrolled refused',
      '--known-hosts',
      knownHosts('kh'),
      '--reissue',
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      'step check failed: an agent is installed already (/etc/podfleet/agent.yaml, /etc/systemd/system/podfleet-agent.service, /opt/podfleet/agent, /var/lib/podfleet)',
    );
    expect(run.stderr).toContain('(nothing to undo)');
    expect(await show('ActiveState')).toBe('active');
    expect(await show('MainPID')).toBe(pid);
    expect(await controller.db.prisma.device.count({ where: { id: DEVICE, online: true } })).toBe(
      1,
    );
  });
});
