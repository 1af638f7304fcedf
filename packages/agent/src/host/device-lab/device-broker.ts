import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execCgroup } from './cgroup-subtree.js';
import type { LabDevice } from './lab-device.js';

export interface DeviceBroker {
  /** Where the device's agent connects: loopback in the device's network namespace. */
  deviceUrl: string;
  /** Where the test connects from the host: a unix socket (MQTT.js `mqtt+unix://`). */
  hostUrl: string;
  stop(): Promise<void>;
}

/**
 * The host's Mosquitto in a device's network namespace only (`nsenter -n`: the host's binary and
 * files): the device keeps its private network, and the test reaches the broker through a unix
 * socket, which no network namespace hides. It runs in the device's cgroup, so that the device's
 * teardown (cgroup.kill) ends it too when the test process dies without stopping it.
 */
export async function startDeviceBroker(device: LabDevice, port = 1883): Promise<DeviceBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-device-broker-'));
  const socket = join(dir, 'mqtt.sock');
  await writeFile(
    join(dir, 'mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      `listener 0 ${socket}`,
      'allow_anonymous true',
      'persistence false',
      // As root, Mosquitto would drop to its own user, which cannot create the socket here.
      'user root',
      'log_dest stderr',
      '',
    ].join('\n'),
  );
  const cgroup = execCgroup(device.name);
  mkdirSync(cgroup, { recursive: true });
  const enter = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"';
  const nsenter = ['nsenter', '-t', String(device.leader), '-n'];
  const broker = spawn(
    'sh',
    ['-c', enter, 'sh', cgroup, ...nsenter, 'mosquitto', '-c', join(dir, 'mosquitto.conf')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  broker.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const deadline = Date.now() + 5000;
  while (!(await accepts(socket))) {
    if (broker.exitCode !== null || Date.now() > deadline) {
      broker.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`mosquitto in ${device.name}: did not start: ${log.trim() || 'no output'}`);
    }
    await sleep(20);
  }
  return {
    deviceUrl: `mqtt://127.0.0.1:${port}`,
    hostUrl: `mqtt+unix://${socket}`,
    async stop() {
      if (broker.exitCode === null && broker.signalCode === null) {
        const exited = new Promise((resolve) => broker.once('exit', resolve));
        broker.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

/** A Mosquitto on the host for devices on links: they dial in over the veth, the test locally. */
export interface LinkedBroker {
  /** What a device's agent is configured with: the host's end of its link. */
  deviceUrl(device: LabDevice): string;
  /** Where the controller and the test connect: loopback. */
  hostUrl: string;
  stop(): Promise<void>;
}

/**
 * The host's Mosquitto listening on loopback and on the host's end of each device's link, with a
 * persistent store for the controller's session as deployed (deploy/mosquitto). It outlives
 * device reboots (its own process, not the device's cgroup: the host's end of a link is added
 * again with the same address, and a bound listener takes connections again). Stopped at exit.
 */
export async function startLinkedBroker(
  devices: readonly LabDevice[],
  port: number,
): Promise<LinkedBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-linked-broker-'));
  const listeners = devices.map((device) => {
    if (!device.link) throw new Error(`device ${device.name} has no link to the host`);
    return `listener ${port} ${device.link.hostAddress}`;
  });
  await writeFile(
    join(dir, 'mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      ...listeners,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      'max_queued_messages 200000',
      'user root',
      'log_dest stderr',
      '',
    ].join('\n'),
  );
  const broker = spawn('mosquitto', ['-c', join(dir, 'mosquitto.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const onExit = () => broker.kill('SIGKILL');
  process.once('exit', onExit);
  let log = '';
  broker.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const stop = async () => {
    process.removeListener('exit', onExit);
    if (broker.exitCode === null && broker.signalCode === null) {
      const exited = new Promise((resolve) => broker.once('exit', resolve));
      broker.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 5000;
  while (!(await acceptsTcp('127.0.0.1', port))) {
    if (broker.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`mosquitto on port ${port} did not start: ${log.trim() || 'no output'}`);
    }
    await sleep(20);
  }
  return {
    deviceUrl: (device) => `mqtt://${device.link?.hostAddress}:${port}`,
    hostUrl: `mqtt://127.0.0.1:${port}`,
    stop,
  };
}

function acceptsTcp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}
