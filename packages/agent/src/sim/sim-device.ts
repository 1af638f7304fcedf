import type { Logger } from 'pino';
import type { DeviceEvent, StateReport } from '@podfleet/shared';
import { systemClock } from '../clock/clock.js';
import { Outbox } from '../outbox/outbox.js';
import { MemoryOutboxStore } from '../outbox/outbox-store.js';
import { DeviceAgent } from '../runtime/device-agent.js';
import { DeviceSession } from '../session/device-session.js';
import { MemoryStateStore } from '../state/state-store.js';
import { SimHost } from './sim-host.js';

export interface SimDeviceOptions {
  id: string;
  labels: Record<string, string>;
  broker: string;
  /** Its broker password (its username is its id), where the broker wants one. */
  password?: string;
  trustedKeys: readonly string[];
  /** Its new images never become ready (so it rolls them back). */
  failing: boolean;
  /** Images whose reference contains this never become ready. */
  badImage?: string;
  settle?: number;
  /** Milliseconds between state reports (the agent's default: 60 s). */
  reportMs?: number;
  logger: Logger;
}

/** What the simulator watches of one device. */
export interface SimDeviceStatus {
  generation: number;
  lastApply: 'applied' | 'failed' | 'rejected' | undefined;
  rollbacks: number;
  connectedOnce: boolean;
  /** When it first connected (ms since the epoch). */
  firstConnectedAt: number | undefined;
}

/**
 * One simulated device: the real agent, outbox and MQTT session, on a host, state directory and
 * outbox store in memory.
 */
export class SimDevice {
  readonly id: string;
  readonly labels: Record<string, string>;
  readonly failing: boolean;
  readonly host: SimHost;
  readonly session: DeviceSession;
  readonly agent: DeviceAgent;
  readonly outbox: Outbox;
  readonly status: SimDeviceStatus = {
    generation: 0,
    lastApply: undefined,
    rollbacks: 0,
    connectedOnce: false,
    firstConnectedAt: undefined,
  };

  constructor(options: SimDeviceOptions) {
    const { id, logger } = options;
    this.id = id;
    this.labels = options.labels;
    this.failing = options.failing;
    // A few journal lines per unit: thousands of hosts share this process.
    this.host = new SimHost(
      { clock: systemClock, name: id, journalLines: 20 },
      options.failing,
      options.badImage,
    );
    // A simulated device is gone for good once the simulator stops: let the broker forget it.
    this.session = new DeviceSession({
      device: id,
      url: options.broker,
      ...(options.password !== undefined ? { password: options.password } : {}),
      sessionExpirySeconds: 600,
      logger,
    });
    this.session.once('up', () => {
      this.status.connectedOnce = true;
      this.status.firstConnectedAt = Date.now();
    });
    this.outbox = new Outbox(new MemoryOutboxStore(), this.session, {}, logger);
    this.agent = new DeviceAgent({
      device: id,
      trustedKeys: options.trustedKeys,
      driver: this.host,
      store: new MemoryStateStore(),
      link: this.session,
      outbox: this.outbox,
      logger,
      ...(options.settle !== undefined ? { settle: options.settle } : {}),
      intervals: {
        autoUpdateMs: undefined,
        ...(options.reportMs !== undefined ? { reportMs: options.reportMs } : {}),
      },
      observer: { event: (event) => this.saw(event), state: (report) => this.reported(report) },
    });
  }

  async start(online: boolean): Promise<void> {
    await this.outbox.open();
    await this.agent.start();
    if (online) this.session.start();
  }

  async stop(): Promise<void> {
    this.agent.stop();
    this.outbox.close();
    await this.session.stop();
  }

  private saw(event: DeviceEvent): void {
    if (event.type === 'rollback') this.status.rollbacks++;
    if (event.type !== 'apply') return;
    this.status.lastApply = event.result;
    // The images it runs from its first apply of a service on are good; later ones fail. (An
    // apply of no service, e.g. a registered device before its assignment, does not count.)
    if (event.result === 'applied' && event.services.length > 0) this.host.failNewImages = true;
  }

  private reported(report: StateReport): void {
    this.status.generation = report.generation;
  }
}
