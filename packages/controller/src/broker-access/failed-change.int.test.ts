import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialIssuer } from '../enrollment/credentials.js';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';
import { brokerCredentialIssuer } from './issuer.js';
import { MosquittoAccess, signalReload } from './mosquitto-access.js';
import { startManagedMosquitto, type ManagedMosquitto } from './testing.js';

interface Login {
  username: string;
  password: string;
}

// A deletion or an enrollment that fails after the password file was written (the broker cannot
// be signalled, a later step throws) is rolled back, and the file is written again from what the
// database committed: the file and the broker_credentials rows never disagree for long.
describe('broker password file after a failed change', () => {
  let broker: ManagedMosquitto;
  let api: ApiHarness;
  let deadPidFile: string;
  const controllerLogin = { username: 'podfleet-controller', password: 'controller-secret' };
  // What the next reload does, and whether the issuer after the broker's throws.
  let reload: () => Promise<void>;
  let tripped = false;

  const tripwire: CredentialIssuer = {
    name: 'tripwire',
    issue: async () => {
      if (tripped) throw new Error('tripwire: issue failed');
      return {};
    },
    revoke: async () => {
      if (tripped) throw new Error('tripwire: revoke failed');
    },
  };

  const fileUsers = async () =>
    (await readFile(broker.passwordFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(0, line.indexOf(':')));

  const connects = async (login: Login) => {
    const client = await mqtt.connectAsync(broker.url, {
      ...login,
      protocolVersion: 5,
      clientId: `${login.username}-${randomUUID()}`,
      reconnectPeriod: 0,
      connectTimeout: 5000,
    });
    await client.endAsync(true);
    return true;
  };
  // Mosquitto reloads asynchronously after SIGHUP: a connection right after it may still be refused.
  const eventually = async (login: Login, expected: boolean) => {
    let last: unknown;
    for (let attempt = 0; attempt < 40; attempt++) {
      const result = await connects(login).catch((error: Error) => error);
      if ((result === true) === expected) return;
      last = result;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`${login.username}: expected connect ${expected}, last ${String(last)}`);
  };

  const enroll = async (device: string) => {
    const token = await api.call('admin', 'POST', '/v1/enrollment-tokens', { ttl: '1h' });
    return api.app.inject({
      method: 'POST',
      url: '/v1/enroll',
      payload: { token: token.json().token, device },
    });
  };

  beforeAll(async () => {
    broker = await startManagedMosquitto();
    deadPidFile = join(broker.dir, 'dead.pid');
    await writeFile(deadPidFile, `${await deadPid()}\n`);
    reload = signalReload(broker.pidFile);
    const access = new MosquittoAccess({
      passwordFile: broker.passwordFile,
      reload: () => reload(),
      accounts: [controllerLogin],
    });
    api = await openApiHarness({
      enroll: { issuers: [brokerCredentialIssuer(access), tripwire] },
    });
    await access.sync(api.prisma);
  });
  afterAll(async () => {
    await api?.close();
    await broker?.stop();
  });

  const working = () => {
    reload = signalReload(broker.pidFile);
    tripped = false;
  };

  it('keeps the device and its account in the file when the broker cannot be signalled', async () => {
    working();
    const enrolled = await enroll('kept-1');
    expect(enrolled.statusCode).toBe(201);
    const login: Login = enrolled.json().credentials.broker;
    await eventually(login, true);

    reload = signalReload(deadPidFile);
    const deleted = await api.call('admin', 'DELETE', '/v1/devices/kept-1');
    expect(deleted.statusCode).toBe(500);
    expect(await api.prisma.device.count({ where: { id: 'kept-1' } })).toBe(1);
    expect(await api.prisma.brokerCredential.count({ where: { deviceId: 'kept-1' } })).toBe(1);
    expect(await fileUsers()).toContain('kept-1');
    // The broker reloads for some other reason (a restart, an operator's SIGHUP).
    await signalReload(broker.pidFile)();
    await eventually(login, true);

    working();
    expect((await api.call('admin', 'DELETE', '/v1/devices/kept-1')).statusCode).toBe(204);
    expect(await fileUsers()).not.toContain('kept-1');
    await eventually(login, false);
  });

  it('puts the account back when a step after the broker’s reload fails the deletion', async () => {
    working();
    const enrolled = await enroll('kept-2');
    expect(enrolled.statusCode).toBe(201);
    const login: Login = enrolled.json().credentials.broker;
    await eventually(login, true);

    // The broker has reloaded a file without kept-2 when the next issuer throws.
    tripped = true;
    const deleted = await api.call('admin', 'DELETE', '/v1/devices/kept-2');
    expect(deleted.statusCode).toBe(500);
    expect(await api.prisma.device.count({ where: { id: 'kept-2' } })).toBe(1);
    expect(await fileUsers()).toContain('kept-2');
    await eventually(login, true);
  });

  it('leaves no account in the file for an enrollment the broker could not be told of', async () => {
    working();
    reload = signalReload(deadPidFile);
    const before = await fileUsers();
    const enrolled = await enroll('rolled-back-1');
    expect(enrolled.statusCode).toBe(500);
    expect(await api.prisma.device.count({ where: { id: 'rolled-back-1' } })).toBe(0);
    expect(await api.prisma.brokerCredential.count({ where: { deviceId: 'rolled-back-1' } })).toBe(
      0,
    );
    expect(await fileUsers()).toEqual(before);
    expect(before).not.toContain('rolled-back-1');
  });

  it('leaves no account in the file for an enrollment that failed after the reload', async () => {
    working();
    tripped = true;
    const before = await fileUsers();
    const enrolled = await enroll('rolled-back-2');
    expect(enrolled.statusCode).toBe(500);
    expect(await api.prisma.device.count({ where: { id: 'rolled-back-2' } })).toBe(0);
    expect(await fileUsers()).toEqual(before);
    // The file is right and the broker reloaded it: the controller's own account still works.
    await eventually(controllerLogin, true);
  });
});

/** The pid of a process that has exited: signalling it fails with ESRCH. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  const pid = child.pid!;
  await new Promise((resolve) => child.once('exit', resolve));
  return pid;
}
