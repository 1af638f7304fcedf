import { EventEmitter } from 'node:events';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { topics } from '@podfleet/shared';
import { ReconnectBackoff, type BackoffOptions } from './backoff.js';
import { connectBroker } from './broker-client.js';
import {
  PublishRefused,
  type DeviceLink,
  type DeviceLinkEvents,
  type PublishOptions,
} from './device-link.js';

export interface DeviceSessionOptions {
  device: string;
  url: string;
  /** The broker's ACL knows a device by its username: the device id unless told otherwise. */
  username?: string;
  password?: string;
  /** CA certificate(s) for mqtts:// and wss://. */
  ca?: string | Buffer;
  keepaliveSeconds?: number;
  /** How long the broker keeps the session (subscriptions, queued commands) while offline. */
  sessionExpirySeconds?: number;
  connectTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  logger?: Logger;
}

const ONLINE = 'online';
const OFFLINE = 'offline';

/**
 * One device's MQTT 5 session: client id = device id, a persistent session (clean start off,
 * session expiry), the last will `offline` (retained, QoS 1) on the online topic, `online`
 * published retained on every connect, desired + cmd subscribed on every connect (so the retained
 * manifest arrives again, whatever the broker kept), and reconnects with jittered exponential
 * backoff.
 */
export class DeviceSession extends EventEmitter<DeviceLinkEvents> implements DeviceLink {
  readonly device: string;
  private client: MqttClient | undefined;
  private up = false;
  private readonly backoff: ReconnectBackoff;
  /** Rejecters of publishes still waiting for their PUBACK. */
  private readonly waiting = new Set<(error: Error) => void>();

  constructor(private readonly options: DeviceSessionOptions) {
    super();
    this.device = options.device;
    this.backoff = new ReconnectBackoff({ baseMs: 1000, capMs: 60_000, ...options.backoff });
  }

  get connected(): boolean {
    return this.up && this.client?.connected === true;
  }

  /** Starts connecting; it keeps trying until stop() or suspend(). */
  start(): void {
    if (this.client) return;
    const { device, options } = this;
    const client = connectBroker(options.url, this.clientOptions());
    this.client = client;
    // Runs before MQTT.js's own close handler, which schedules the next attempt with this period.
    client.prependListener('close', () => {
      client.options.reconnectPeriod = this.backoff.next();
      if (client === this.client && this.up) {
        this.up = false;
        this.emit('down');
      }
    });
    client.on('connect', () => this.connectedWith(client));
    client.on('message', (topic, payload) => {
      if (client !== this.client || payload.length === 0) return; // a cleared retained message
      if (topic === topics.desired(device)) this.emit('desired', payload);
      else if (topic === topics.cmd(device)) this.emit('command', payload);
    });
    client.on('error', (error) => {
      options.logger?.warn({ err: error.message }, `broker ${options.url}: ${error.message}`);
    });
  }

  /**
   * Says goodbye: `offline` (retained) while still connected, then closes. Publishes still waiting
   * for a PUBACK are rejected (the outbox keeps them for the next start).
   */
  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      await Promise.race([
        this.publish(topics.online(this.device), OFFLINE, { retain: true }).catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 2000).unref()),
      ]);
    }
    this.detach(new Error('session stopped'));
    // Forced: a clean end would wait for every PUBACK still due, which may never come.
    await client.endAsync(true).catch(() => undefined);
  }

  /**
   * Drops the connection as a power or network loss would (no DISCONNECT: the broker publishes the
   * last will) and stays offline until resume().
   */
  suspend(): void {
    const client = this.client;
    if (!client) return;
    this.detach(new Error('session suspended'));
    client.end(true);
  }

  resume(): void {
    this.start();
  }

  /** Cuts the socket under MQTT.js, which then reconnects on its own (tests: the last will). */
  dropConnection(): void {
    this.client?.stream.destroy();
  }

  publish(topic: string, payload: string, { retain }: PublishOptions): Promise<void> {
    const client = this.client;
    if (!client?.connected) return Promise.reject(new Error('not connected'));
    return new Promise((resolve, reject) => {
      const abandon = (error: Error) => {
        this.waiting.delete(abandon);
        reject(error);
      };
      this.waiting.add(abandon);
      client.publish(topic, payload, { qos: 1, retain }, (error) => {
        if (!this.waiting.delete(abandon)) return;
        if (!error) return resolve();
        const code = (error as { code?: unknown }).code;
        reject(typeof code === 'number' ? new PublishRefused(error.message, code) : error);
      });
    });
  }

  private clientOptions(): IClientOptions {
    const { device, options } = this;
    return {
      protocolVersion: 5,
      clientId: device,
      clean: false,
      username: options.username ?? device,
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      keepalive: options.keepaliveSeconds ?? 30,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      reconnectPeriod: this.backoff.next(),
      // Refused credentials may be fixed on the broker: keep trying, slowly.
      reconnectOnConnackError: true,
      // This session subscribes on every connect itself.
      resubscribe: false,
      // Not MQTT.js's table of all 65,536 two-byte numbers (6 MB of Buffer objects on the heap,
      // built at the first packet): a device writes a few packets a minute.
      writeCache: false,
      properties: { sessionExpiryInterval: options.sessionExpirySeconds ?? 86_400 },
      will: { topic: topics.online(device), payload: Buffer.from(OFFLINE), qos: 1, retain: true },
    };
  }

  private connectedWith(client: MqttClient): void {
    if (client !== this.client) return;
    const { device, options } = this;
    this.backoff.reset();
    options.logger?.info(`connected to ${options.url}`);
    client.publish(topics.online(device), ONLINE, { qos: 1, retain: true }, (error) => {
      if (error) options.logger?.warn(`publish online: ${error.message}`);
    });
    const wanted = [topics.desired(device), topics.cmd(device)];
    client.subscribe(wanted, { qos: 1 }, (error, granted) => {
      if (client !== this.client) return;
      if (error) {
        // The connection went before the SUBACK: the next connect subscribes again.
        options.logger?.warn(`subscribe: ${error.message}`);
        return;
      }
      for (const grant of granted ?? []) {
        if (grant.qos > 2) options.logger?.error(`subscribe ${grant.topic}: refused by the broker`);
      }
      this.up = true;
      this.emit('up');
    });
  }

  private detach(reason: Error): void {
    this.client = undefined;
    if (this.up) {
      this.up = false;
      this.emit('down');
    }
    for (const abandon of [...this.waiting]) abandon(reason);
  }
}
