import type { MqttClient } from 'mqtt';
import { manifestJson, topics, type DeviceManifest } from '@podfleet/shared';
import type { ManifestPublisher } from '../desired/sync.js';

/** Manifests go out retained with QoS 1: a device that connects later still gets its latest. */
export function mqttManifestPublisher(client: MqttClient): ManifestPublisher {
  return {
    async publish(manifest: DeviceManifest) {
      await client.publishAsync(topics.desired(manifest.device), manifestJson(manifest), {
        qos: 1,
        retain: true,
      });
    },
    async clear(deviceId: string) {
      // An empty retained message deletes the retained one (MQTT 3.3.1.3).
      await client.publishAsync(topics.desired(deviceId), '', { qos: 1, retain: true });
    },
  };
}
