import type { EventEmitter } from 'node:events';

/** What a device's connection to the broker tells the agent. */
export interface DeviceLinkEvents {
  /** Connected, `online` sent and desired + cmd subscribed (again): time to send what waits. */
  up: [];
  /** The connection is gone; MQTT keeps trying to get it back. */
  down: [];
  /** A message on the desired topic (the retained manifest arrives on every subscribe). */
  desired: [payload: Buffer];
  /** A request on the cmd topic. */
  command: [payload: Buffer];
}

export interface PublishOptions {
  retain: boolean;
}

/**
 * The agent's side of MQTT: one device's topics, QoS 1. The real one is DeviceSession; tests use
 * MemoryLink.
 */
export interface DeviceLink extends Pick<EventEmitter<DeviceLinkEvents>, 'on' | 'off'> {
  readonly device: string;
  readonly connected: boolean;
  /**
   * Publishes with QoS 1 and resolves on the broker's PUBACK, which may come after a reconnect
   * (MQTT resends what was in flight). Rejects at once when not connected, and when the session
   * is stopped before the PUBACK; rejects with PublishRefused when the broker refuses the message.
   */
  publish(topic: string, payload: string, options: PublishOptions): Promise<void>;
}

/** The broker answered the publish with an error reason code (ACL, size, quota): resending is futile. */
export class PublishRefused extends Error {
  constructor(
    message: string,
    readonly reasonCode: number,
  ) {
    super(message);
    this.name = 'PublishRefused';
  }
}
