import { EventEmitter } from 'node:events';
import type { DeviceLink, DeviceLinkEvents, PublishOptions } from './device-link.js';

export interface LinkMessage {
  topic: string;
  payload: string;
  retain: boolean;
}

interface InFlight extends LinkMessage {
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * A broker connection in memory, for tests: what was published (and acknowledged), the retained
 * messages, and control over connection and PUBACKs. Like MQTT, a publish in flight when the
 * connection drops stays in flight and is acknowledged after the next connect.
 */
export class MemoryLink extends EventEmitter<DeviceLinkEvents> implements DeviceLink {
  connected = false;
  /** When off, publishes wait for ack(): a slow broker, or one about to go away. */
  autoAck = true;
  /** Acknowledged publishes, in order. */
  readonly delivered: LinkMessage[] = [];
  readonly retained = new Map<string, string>();
  private inFlight: InFlight[] = [];

  constructor(readonly device: string) {
    super();
  }

  connect(): void {
    this.connected = true;
    this.emit('up');
    if (this.autoAck) this.ack();
  }

  disconnect(): void {
    this.connected = false;
    this.emit('down');
  }

  /**
   * The agent process ends: publishes still in flight never get their PUBACK. With
   * `reachedBroker`, the broker had them already (only the PUBACKs were lost).
   */
  abandonInFlight(reachedBroker = false): void {
    const lost = this.inFlight;
    this.inFlight = [];
    for (const message of lost) {
      if (reachedBroker) this.deliver(message);
      message.reject(new Error('session stopped'));
    }
  }

  /** Acknowledges the first `count` publishes in flight (all by default), in order. */
  ack(count = this.inFlight.length): void {
    for (const message of this.inFlight.splice(0, count)) {
      this.deliver(message);
      message.resolve();
    }
  }

  get inFlightCount(): number {
    return this.inFlight.length;
  }

  publish(topic: string, payload: string, { retain }: PublishOptions): Promise<void> {
    if (!this.connected) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      this.inFlight.push({ topic, payload, retain, resolve, reject });
      if (this.autoAck) queueMicrotask(() => this.ack());
    });
  }

  private deliver({ topic, payload, retain }: LinkMessage): void {
    this.delivered.push({ topic, payload, retain });
    if (retain) this.retained.set(topic, payload);
  }

  deliverDesired(payload: string | Buffer): void {
    this.emit('desired', Buffer.from(payload));
  }

  deliverCommand(payload: string | Buffer): void {
    this.emit('command', Buffer.from(payload));
  }

  /** Acknowledged payloads on a topic, parsed as JSON. */
  published<T = unknown>(topic: string): T[] {
    return this.delivered
      .filter((message) => message.topic === topic)
      .map((message) => JSON.parse(message.payload) as T);
  }
}
