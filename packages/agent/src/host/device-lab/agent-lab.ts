import { createConnection, createServer, type AddressInfo } from 'node:net';
import {
  signManifest,
  topics,
  type CommandResponse,
  type DeviceEvent,
  type ServiceSpecInput,
  type SigningKey,
  type StateReport,
} from '@podfleet/shared';
import { BrokerWatch } from '../../session/testing.js';
import { agentBindArgs, installAgent } from './device-agent.js';
import { startLinkedBroker, type LinkedBroker } from './device-broker.js';
import type { DeviceSuite } from './device-rootfs.js';
import { bootDevice, type LabDevice } from './lab-device.js';
import { startLabRegistry, type LabRegistry } from './lab-registry.js';
import { installStepTraps } from './step-trap.js';
import { importAppImage, type AppBehaviour } from './test-images.js';

export interface AgentLabOptions {
  suite: DeviceSuite;
  /** The agent's device id. */
  deviceId: string;
  /** The controller's key: what the lab signs manifests with and the agent trusts. */
  key: SigningKey;
}

/** Local names of the builds the lab pushes (never what a service runs). */
const BUILDS = 'localhost/lab-build/app';
/**
 * The builds live in a Podman storage of their own in the device: the device's own storage gets
 * images only by pulling them, as a real device does. (One image in both would keep the digest
 * of its local import as its `Digest`, never the registry's.)
 */
const BUILD_STORAGE = ['--root', '/var/lib/lab-build', '--runroot', '/run/lab-build'];

export interface PushedImage {
  /** The image id (the same locally and once pulled: the id is the config's digest). */
  id: string;
  /** The manifest digest the registry has under the tag. */
  digest: string;
}

/**
 * One device as a controller sees it: booted from a persistent root with a link to the host, the
 * built agent as its unit, a registry and a broker on the host's end of the link (both outlive
 * the device's reboots and power cuts), step traps in front of podman and systemctl, and a
 * controller-like MQTT client that publishes signed manifests and commands and hears the rest.
 */
export class AgentLab {
  private commands = 0;
  private readonly builds = new Map<string, { local: string; id: string }>();

  private constructor(
    readonly options: AgentLabOptions,
    public device: LabDevice,
    readonly registry: LabRegistry,
    readonly broker: LinkedBroker,
    readonly watch: BrokerWatch,
  ) {}

  static async start(options: AgentLabOptions): Promise<AgentLab> {
    const device = await bootDevice({
      suite: options.suite,
      link: true,
      persistent: true,
      nspawnArgs: agentBindArgs(),
    });
    const stops: Array<() => Promise<unknown>> = [() => device.shutdown()];
    try {
      const registry = await startLabRegistry(device);
      stops.push(() => registry.stop());
      const broker = await startLinkedBroker([device], await freePort());
      stops.push(() => broker.stop());
      const id = options.deviceId;
      const watch = await BrokerWatch.open(
        [topics.state(id), topics.events(id), topics.cmdResult(id), topics.online(id)],
        broker.hostUrl,
      );
      await watch.clearDevices([id]);
      const lab = new AgentLab(options, device, registry, broker, watch);
      await installStepTraps(device);
      // Debian 12 enables Podman's own podman-auto-update.service (at every boot) and its daily
      // timer: ungated updates and `podman image prune`, behind the agent's back. The agent
      // disables both once it runs; masked here already, since the first boot's run races the
      // test (and would leave the device degraded when it fails).
      await device.exec(['systemctl', 'mask', '--now', 'podman-auto-update.timer']);
      await device.exec(['systemctl', 'mask', '--now', 'podman-auto-update.service']);
      await installAgent(
        device,
        { device: id, brokerUrl: broker.deviceUrl(device), publicKeyPem: options.key.publicKeyPem },
        { enable: true },
      );
      return lab;
    } catch (error) {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      throw error;
    }
  }

  /** `host:port/podfleet/app:TAG` in the lab's registry. */
  image(tag: string): string {
    return `${this.registry.address}/podfleet/app:${tag}`;
  }

  /**
   * Pushes the test app with `behaviour` under `tag`. Each behaviour is imported once into the
   * build storage: pushing it again gives the same digest, so a tag can be put back on an image
   * the device already has. The image id is the one the device gets by pulling.
   */
  async push(tag: string, behaviour: AppBehaviour): Promise<PushedImage> {
    const key = JSON.stringify(behaviour);
    let build = this.builds.get(key);
    if (!build) {
      const local = `${BUILDS}:b${this.builds.size + 1}`;
      build = { local, id: await importAppImage(this.device, local, behaviour, BUILD_STORAGE) };
      this.builds.set(key, build);
    }
    const digestFile = '/run/lab-pushed-digest';
    await this.device.exec(['podman', ...BUILD_STORAGE, 'push', '-q', '--digestfile', digestFile, build.local, `docker://${this.image(tag)}`]); // prettier-ignore
    return { id: build.id, digest: (await this.device.exec(['cat', digestFile])).trim() };
  }

  /** Publishes a signed manifest, retained, as the controller does. */
  async desire(generation: number, services: ServiceSpecInput[]): Promise<void> {
    const device = this.options.deviceId;
    const manifest = signManifest(
      { device, generation, issuedAt: new Date().toISOString(), services },
      this.options.key.privateKeyPem,
    );
    await this.watch.publish(topics.desired(device), JSON.stringify(manifest), true);
  }

  /** Sends an `auto-update` command; its id. */
  async sendAutoUpdate(): Promise<string> {
    const id = `au-${++this.commands}`;
    const device = this.options.deviceId;
    await this.watch.publish(topics.cmd(device), JSON.stringify({ id, type: 'auto-update' }));
    return id;
  }

  /** The agent's answer to a command, once it gave it. */
  answerTo(id: string, timeoutMs = 60_000): Promise<CommandResponse> {
    const topic = topics.cmdResult(this.options.deviceId);
    return this.watch.until(
      `the answer to ${id}`,
      () => this.watch.json<CommandResponse>(topic).find((r) => r.id === id),
      timeoutMs,
    );
  }

  /** The last `lines` journal lines of `units` in the device, with their times. */
  journal(units: string[], lines: number): Promise<string> {
    const which = units.flatMap((unit) => ['-u', unit]);
    return this.device.exec(['journalctl', '--no-pager', '-o', 'short-precise', ...which, '-n', String(lines)]); // prettier-ignore
  }

  /** Where the lab's record of what it heard stands now. */
  mark(): number {
    return this.watch.seen.length;
  }

  events(since = 0): DeviceEvent[] {
    return this.heard<DeviceEvent>(topics.events(this.options.deviceId), since);
  }

  states(since = 0): StateReport[] {
    return this.heard<StateReport>(topics.state(this.options.deviceId), since);
  }

  /** What the app in the device answers on its published port, from the host; undefined: nothing. */
  answer(timeoutMs = 1000): Promise<string | undefined> {
    return readAll(this.device.link!.address, APP_PORT, timeoutMs);
  }

  /** Pulls the device's plug and boots it again; how long the boot took (spawn → running). */
  async powerCut(): Promise<number> {
    this.device = await this.device.powerCut();
    return this.device.bootMs;
  }

  async stop(): Promise<void> {
    await this.watch.clearDevices([this.options.deviceId]).catch(() => undefined);
    await this.watch.close().catch(() => undefined);
    await this.device.shutdown();
    await this.broker.stop();
    await this.registry.stop();
  }

  private heard<T>(topic: string, since: number): T[] {
    return this.watch.seen
      .slice(since)
      .filter((m) => m.topic === topic && m.payload !== '')
      .map((m) => JSON.parse(m.payload) as T);
  }
}

/** The port the test app listens on, published by the lab's services as the same port. */
export const APP_PORT = 8080;

function readAll(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const socket = createConnection({ host, port, timeout: timeoutMs });
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.once('end', () => resolve(text.trim() || undefined));
    socket.once('timeout', () => (socket.destroy(), resolve(undefined)));
    socket.once('error', () => resolve(undefined));
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
