import type { Device } from '../db/generated/client.js';
import type { DeviceCompliance } from '../compliance/compliance.js';
import type { DeviceView } from './schemas.js';

export function labelsOf(device: { labels: unknown }): Record<string, string> {
  return device.labels as Record<string, string>;
}

export function deviceView(device: Device, compliance: DeviceCompliance): DeviceView {
  return {
    id: device.id,
    labels: labelsOf(device),
    online: device.online,
    lastSeen: device.lastSeen,
    agentVersion: device.agentVersion,
    podmanVersion: device.podmanVersion,
    systemdVersion: device.systemdVersion,
    arch: device.arch,
    unitStyle: device.unitStyle,
    desiredGeneration: device.desiredGeneration,
    appliedGeneration: device.appliedGeneration,
    compliance,
    createdAt: device.createdAt,
    updatedAt: device.updatedAt,
  };
}
