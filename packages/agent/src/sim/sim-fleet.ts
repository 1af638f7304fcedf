import type { Logger } from 'pino';
import { SimDevice } from './sim-device.js';

export interface SimFleetOptions {
  devices: number;
  broker: string;
  /**
   * Broker passwords by device id, as enrollment issued them (`--credentials`): a broker with
   * per-device accounts (deploy/mosquitto) lets each device in under its own id only.
   */
  passwords?: ReadonlyMap<string, string>;
  /** Device ids are PREFIX-0000, PREFIX-0001, … */
  prefix: string;
  labels: Record<string, string>;
  /** Share of devices whose new images never become ready. */
  failRate: number;
  /** Images whose reference contains this never become ready, on any device. */
  badImage?: string;
  /** Share of devices that go off and on again (starting off). */
  offlineRate: number;
  trustedKeys: readonly string[];
  settle?: number;
  /** Milliseconds between state reports (the agent's default: 60 s). */
  reportMs?: number;
  logger: Logger;
  /** How long a flapping device stays off, then on: a random time in this range. */
  flapMs?: { min: number; max: number };
  random?: () => number;
}

export interface FleetProgress {
  devices: number;
  connected: number;
  /** Devices that connected at least once. */
  reached: number;
  /** Seconds from start until every device that is not flapping had connected. */
  connectSeconds: number | null;
  /** The newest generation any device runs, and how its devices fared. */
  generation: number;
  applied: number;
  failed: number;
  rollbacks: number;
  rejected: number;
  flapping: number;
  /** Events and state reports still waiting for the broker. */
  outboxWaiting: number;
}

/** N simulated devices in this process, each with its own MQTT connection. */
export class SimFleet {
  readonly devices: SimDevice[] = [];
  private readonly flapping = new Set<SimDevice>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private startedAt = 0;

  constructor(private readonly options: SimFleetOptions) {
    const random = options.random ?? Math.random;
    const width = Math.max(4, String(options.devices - 1).length);
    // Exactly round(rate × N) devices fail or flap, spread over the fleet at random.
    const failing = pick(options.devices, options.failRate, random);
    const flapping = pick(options.devices, options.offlineRate, random);
    for (let i = 0; i < options.devices; i++) {
      const id = `${options.prefix}-${String(i).padStart(width, '0')}`;
      const password = options.passwords?.get(id);
      if (options.passwords && password === undefined) {
        throw new Error(`--credentials: no password for ${id}`);
      }
      const device = new SimDevice({
        id,
        labels: options.labels,
        broker: options.broker,
        ...(password !== undefined ? { password } : {}),
        trustedKeys: options.trustedKeys,
        failing: failing.has(i),
        ...(options.badImage !== undefined ? { badImage: options.badImage } : {}),
        ...(options.settle !== undefined ? { settle: options.settle } : {}),
        ...(options.reportMs !== undefined ? { reportMs: options.reportMs } : {}),
        logger: options.logger.child({ device: id }),
      });
      this.devices.push(device);
      if (flapping.has(i)) this.flapping.add(device);
    }
  }

  /** Starts every agent; steady devices connect now, flapping ones after their first off time. */
  async start(): Promise<void> {
    this.startedAt = Date.now();
    await Promise.all(this.devices.map((device) => device.start(!this.flapping.has(device))));
    for (const device of this.flapping) this.flap(device, false);
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.all(this.devices.map((device) => device.stop()));
  }

  progress(): FleetProgress {
    const steady = this.devices.filter((d) => !this.flapping.has(d));
    const connectedAt = steady.map((d) => d.status.firstConnectedAt);
    const allConnected = connectedAt.every((at) => at !== undefined);
    const generation = Math.max(0, ...this.devices.map((d) => d.status.generation));
    const newest = this.devices.filter((d) => d.status.generation === generation);
    return {
      devices: this.devices.length,
      connected: this.devices.filter((d) => d.session.connected).length,
      reached: this.devices.filter((d) => d.status.connectedOnce).length,
      connectSeconds: allConnected
        ? (Math.max(this.startedAt, ...(connectedAt as number[])) - this.startedAt) / 1000
        : null,
      generation,
      applied: newest.filter((d) => generation > 0 && d.status.lastApply === 'applied').length,
      failed: newest.filter((d) => generation > 0 && d.status.lastApply === 'failed').length,
      rollbacks: this.devices.reduce((sum, d) => sum + d.status.rollbacks, 0),
      rejected: this.devices.filter((d) => d.status.lastApply === 'rejected').length,
      flapping: this.flapping.size,
      outboxWaiting: this.devices.reduce((sum, d) => sum + d.outbox.stats().waiting, 0),
    };
  }

  /** Off for a while, then on for a while, and so on: a device on a bad link. */
  private flap(device: SimDevice, online: boolean): void {
    const { min, max } = this.options.flapMs ?? { min: 5_000, max: 20_000 };
    const random = this.options.random ?? Math.random;
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (online) device.session.suspend();
        else device.session.resume();
        this.flap(device, !online);
      },
      min + random() * (max - min),
    );
    this.timers.add(timer);
  }
}

/** round(rate × n) distinct indexes below n. */
function pick(n: number, rate: number, random: () => number): Set<number> {
  const indexes = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [indexes[i], indexes[j]] = [indexes[j]!, indexes[i]!];
  }
  return new Set(indexes.slice(0, Math.round(rate * n)));
}
