import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LabDevice } from './lab-device.js';

/** A container registry on the host's end of a device's link (Debian's `docker-registry`). */
export interface LabRegistry {
  /** `host:port`, as image references name it: `10.213.0.1:5000/podfleet/app:stable`. */
  address: string;
  stop(): Promise<void>;
}

const REGISTRY = '/usr/bin/docker-registry';

/**
 * Starts the registry (distribution 2.8, plain HTTP, storage in a temp dir) listening on the
 * host's address of the device's link only, and tells the device's Podman it is an insecure
 * registry (registries.conf.d), as an operator does for a site registry without TLS.
 */
export async function startLabRegistry(device: LabDevice, port = 5000): Promise<LabRegistry> {
  if (!device.link) throw new Error(`device ${device.name} has no link to the host (link: true)`);
  const address = `${device.link.hostAddress}:${port}`;
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-registry-'));
  await writeFile(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }`,
      `http: { addr: "${address}" }`,
      '',
    ].join('\n'),
  );
  const registry = spawn(REGISTRY, ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  registry.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const stop = async () => {
    if (registry.exitCode === null && registry.signalCode === null) {
      const exited = new Promise((resolve) => registry.once('exit', resolve));
      registry.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (!(await answers(address))) {
    if (registry.exitCode !== null || Date.now() > deadline) {
      await stop();
      const said = log.trim().split('\n').slice(-2).join(' | ');
      throw new Error(`docker-registry on ${address} did not start: ${said || 'no output'}`);
    }
    await sleep(50);
  }
  await device.exec(['mkdir', '-p', '/etc/containers/registries.conf.d']);
  await writeFile(
    join(device.root, '/etc/containers/registries.conf.d/50-lab-registry.conf'),
    `[[registry]]\nlocation = "${address}"\ninsecure = true\n`,
  );
  return { address, stop };
}

/** Whether the registry answers its API's version check (`GET /v2/` → 200). */
function answers(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const req = request({ host, port: Number(port), path: '/v2/', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.once('error', () => resolve(false));
    req.once('timeout', () => req.destroy());
    req.end();
  });
}
