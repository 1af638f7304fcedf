import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { controllerSubscriptions, DeviceEvent, StateReport, topics } from '@podfleet/shared';
import { systemClock } from '../clock/clock.js';
import { loadAgentConfig } from '../config/load-config.js';
import { MemoryHost } from '../host/memory-host.js';
import {
  BrokerWatch,
  startDeploymentBroker,
  uniqueDeviceId,
  type PrivateBroker,
} from '../session/testing.js';
import { startDeviceAgent } from './start-agent.js';
import { controllerKey, signedManifest } from './testing.js';

const IMAGE = 'registry.example/acme/web:1';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function configFile(broker: PrivateBroker, device: string, password: string) {
  const dir = await mkdtemp(join(tmpdir(), 'podfleet-run-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'password'), `${password}\n`, { mode: 0o600 });
  const pem = controllerKey.publicKeyPem.trim().replace(/\n/g, '\n    ');
  const path = join(dir, 'agent.yaml');
  await writeFile(
    path,
    `device: ${device}
broker:
  url: ${broker.url}
  passwordFile: ${join(dir, 'password')}
controller:
  publicKeys: |
    ${pem}
stateDir: ${join(dir, 'state')}
autoUpdate: { schedule: "off" }
settle: 1s
reportInterval: 1s
logLevel: silent
`,
  );
  return { path, stateDir: join(dir, 'state') };
}

describe('an agent started from its config, under the deployment broker ACL', () => {
  it('connects as its device user, applies, reports on its interval, and says goodbye', async () => {
    const device = uniqueDeviceId('acl');
    const broker = await startDeploymentBroker({
      [device]: 'device-secret',
      'podfleet-controller': 'controller-secret',
    });
    cleanups.push(() => broker.stop());
    const controller = await BrokerWatch.open(
      [
        controllerSubscriptions.state,
        controllerSubscriptions.events,
        controllerSubscriptions.online,
      ],
      broker.url,
      { username: 'podfleet-controller', password: 'controller-secret' },
    );
    cleanups.push(() => controller.close());
    const manifest = signedManifest(device, 1, [{ name: 'web', image: IMAGE }]);
    await controller.publish(topics.desired(device), JSON.stringify(manifest), true);

    const { path, stateDir } = await configFile(broker, device, 'device-secret');
    const host = new MemoryHost({ clock: systemClock, name: device });
    host.images.push(IMAGE);
    const running = await startDeviceAgent(
      await loadAgentConfig(path),
      host,
      pino({ level: 'silent' }),
    );
    cleanups.push(() => running.stop());

    const states = () =>
      controller.json<unknown>(topics.state(device)).map((s) => StateReport.parse(s));
    await controller.until('generation 1', () => states().find((s) => s.generation === 1));
    const applied = controller
      .json<unknown>(topics.events(device))
      .map((e) => DeviceEvent.parse(e));
    expect(applied).toMatchObject([{ type: 'apply', generation: 1, result: 'applied' }]);
    // reportInterval: 1s — more reports follow with nothing changed.
    const count = states().length;
    await controller.until('two more reports', () =>
      states().length >= count + 2 ? true : undefined,
    );
    expect(await readdir(stateDir)).toEqual(expect.arrayContaining(['applied.json', 'outbox']));

    await running.stop();
    await controller.until('offline', () =>
      controller.seen.find((m) => m.topic === topics.online(device) && m.payload === 'offline'),
    );
  });
});
