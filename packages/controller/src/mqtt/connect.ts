import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { redactUrl } from '../serve/redact-url.js';

export interface BrokerSession {
  client: MqttClient;
  /** Whether the broker offers MQTT 5 shared subscriptions ($share/…): absent means yes. */
  sharedSubscriptions: boolean;
}

/**
 * Connects with MQTT 5 and reads what the broker offers from its CONNACK. Rejects with the
 * broker's reason when the first connection fails (a bad URL or refused credentials should stop
 * the controller at start, not retry forever); later drops reconnect on their own.
 *
 * `prepare` runs before the connection opens: a resumed persistent session delivers what waited
 * for it right after CONNACK, and MQTT.js acknowledges a message even when nobody listens.
 */
export function connectBroker(
  url: string,
  options: IClientOptions = {},
  prepare?: (client: MqttClient) => void,
): Promise<BrokerSession> {
  const client = mqtt.connect(url, {
    protocolVersion: 5,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    ...options,
  });
  prepare?.(client);
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      client.removeListener('connect', connected);
      client.end(true);
      reject(new Error(`cannot connect to ${redactUrl(url)}: ${error.message}`));
    };
    const connected = (connack: IConnackPacket) => {
      client.removeListener('error', fail);
      const offered = connack.properties?.sharedSubscriptionAvailable;
      resolve({ client, sharedSubscriptions: offered !== false });
    };
    client.once('error', fail);
    client.once('connect', connected);
  });
}

/**
 * A controller's MQTT session: persistent, so that messages for it wait in the broker while it
 * restarts (QoS 1), and with the largest Receive Maximum, so that the broker keeps them in flight
 * instead of in its per-client queue — Mosquitto drops what overflows that queue
 * (`max_queued_messages`, 1000 by default: "Outgoing messages are being dropped").
 */
export function controllerSessionOptions(
  clientId: string,
  sessionExpirySeconds = 24 * 3600,
): IClientOptions {
  return {
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: sessionExpirySeconds, receiveMaximum: 65_535 },
  };
}
