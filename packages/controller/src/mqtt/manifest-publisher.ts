import type { MqttClient } from 'mqtt';
import { manifestJson, topics, type DeviceManifest } from '@podfleet/shared';
import type { ManifestPublisher } from '../desired/sync.js';

/**
 * deploy/mosquitto's `max_packet_size` (1 MiB) less room for the topic and properties: Mosquitto
 * disconnects a client that sends a larger packet, and MQTT.js does not check before sending.
 */
export const MAX_MANIFEST_BYTES = 1024 * 1024 - 16 * 1024;

export interface ManifestPublisherOptions {
  maxBytes?: number;
  /** Where a manifest too large to publish is named. */
  log?: { error(fields: object, message: string): void };
}

/**
 * Manifests go out retained with QoS 1: a device that connects later still gets its latest. One
 * too large for the broker is not sent (it would cost the controller its connection, and every
 * device its manifests): it is logged naming the device, which stays behind its desired generation.
 */
export function mqttManifestPublisher(
  client: MqttClient,
  options: ManifestPublisherOptions = {},
): ManifestPublisher {
  const maxBytes = options.maxBytes ?? MAX_MANIFEST_BYTES;
  return {
    async publish(manifest: DeviceManifest) {
      const json = manifestJson(manifest);
      const bytes = Buffer.byteLength(json);
      if (bytes > maxBytes) {
        options.log?.error(
          { device: manifest.device, generation: manifest.generation, bytes, maxBytes },
          `manifest of ${manifest.device} not published: ${bytes} bytes, the broker takes at most ${maxBytes}`,
        );
        return;
      }
      await client.publishAsync(topics.desired(manifest.device), json, { qos: 1, retain: true });
    },
    async clear(deviceId: string) {
      // An empty retained message deletes the retained one (MQTT 3.3.1.3).
      await client.publishAsync(topics.desired(deviceId), '', { qos: 1, retain: true });
    },
  };
}
