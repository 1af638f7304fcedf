import {
  DeviceEvent,
  generateSigningKey,
  signManifest,
  StateReport,
  topics,
  type CommandResponse,
  type DeviceManifest,
  type ServiceSpecInput,
} from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import { MemoryHost } from '../host/memory-host.js';
import { Outbox } from '../outbox/outbox.js';
import { MemoryOutboxStore } from '../outbox/outbox-store.js';
import { MemoryLink } from '../session/memory-link.js';
import type { HostDriver } from '../host/host-driver.js';
import { MemoryStateStore, type StateStore } from '../state/state-store.js';
import { DeviceAgent, type AgentIntervals } from './device-agent.js';

export const controllerKey = generateSigningKey();

/** A manifest as the controller signs it. */
export function signedManifest(
  device: string,
  generation: number,
  services: ServiceSpecInput[],
  key = controllerKey,
): DeviceManifest {
  return signManifest(
    { device, generation, issuedAt: '2026-01-01T00:00:00.000Z', services },
    key.privateKeyPem,
  );
}

/**
 * One device for loop tests: the agent on a MemoryHost with a virtual clock, talking to a
 * MemoryLink, everything it publishes parsed against the shared contracts.
 */
export function memoryDevice(
  options: { device?: string; intervals?: Partial<AgentIntervals>; settle?: number } = {},
) {
  const device = options.device ?? 'dev-1';
  const clock = new VirtualClock();
  const host = new MemoryHost({ clock, name: device });
  const store = new MemoryStateStore();
  const outboxStore = new MemoryOutboxStore();
  const link = new MemoryLink(device);
  let power = powerLine(host, store);
  const makeAgent = (outbox: Outbox) =>
    new DeviceAgent({
      device,
      trustedKeys: [controllerKey.publicKeyPem],
      driver: power.driver,
      store: power.store,
      link,
      outbox,
      clock,
      ...(options.settle !== undefined ? { settle: options.settle } : {}),
      intervals: {
        reportMs: 3_600_000,
        driftMs: 3_600_000,
        autoUpdateMs: undefined,
        ...options.intervals,
      },
    });
  const outbox = new Outbox(outboxStore, link);
  const dev = {
    device,
    clock,
    host,
    store,
    link,
    outbox,
    agent: makeAgent(outbox),
    async start() {
      await dev.outbox.open();
      await dev.agent.start();
      link.connect();
      await clock.run(dev.agent.idle());
    },
    /** The agent process restarts: new agent and outbox objects on the same host and state. */
    async restart() {
      dev.agent.stop();
      dev.outbox.close();
      link.disconnect();
      dev.outbox = new Outbox(outboxStore, link);
      dev.agent = makeAgent(dev.outbox);
      await dev.start();
    },
    /**
     * Cuts the power when the agent next calls `method` on the host (or now): from that call on,
     * nothing the running agent does reaches the host or its state directory. Resolves at the cut.
     */
    cutPowerAt(method?: keyof HostDriver): Promise<void> {
      return power.cutAt(method);
    },
    /**
     * The device boots after a power cut: systemd starts what is enabled from the files on disk,
     * then a new agent starts on the same state directory and outbox files.
     */
    async boot() {
      dev.agent.stop();
      dev.outbox.close();
      link.disconnect();
      host.boot();
      power = powerLine(host, store);
      dev.outbox = new Outbox(outboxStore, link);
      dev.agent = makeAgent(dev.outbox);
      await dev.start();
    },
    /** Delivers a manifest (or raw payload) and lets the agent finish with it. */
    async desire(manifest: DeviceManifest | string) {
      link.deliverDesired(typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
      await clock.run(dev.agent.idle());
    },
    events(): DeviceEvent[] {
      return link.published(topics.events(device)).map((event) => DeviceEvent.parse(event));
    },
    states(): StateReport[] {
      return link.published(topics.state(device)).map((report) => StateReport.parse(report));
    },
    responses(): CommandResponse[] {
      return link.published<CommandResponse>(topics.cmdResult(device));
    },
  };
  return dev;
}

/**
 * The host and the state directory as one agent process reaches them, until the power is cut:
 * from then on each call from that process waits forever, as if it had died mid-call.
 */
function powerLine(host: MemoryHost, store: MemoryStateStore) {
  let cut = false;
  let at: { method: string; reached: () => void } | undefined;
  const hang = new Promise<never>(() => {});
  const guard = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(object, property, receiver) {
        const value: unknown = Reflect.get(object, property, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (at && property === at.method) {
            cut = true;
            at.reached();
          }
          if (cut) return hang;
          return (value as (...a: unknown[]) => unknown).apply(object, args);
        };
      },
    });
  return {
    driver: guard<HostDriver>(host),
    store: guard<StateStore>(store),
    cutAt(method?: string): Promise<void> {
      if (method === undefined) {
        cut = true;
        return Promise.resolve();
      }
      return new Promise((reached) => (at = { method, reached }));
    },
  };
}
