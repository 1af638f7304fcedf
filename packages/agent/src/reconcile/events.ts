import { randomUUID } from 'node:crypto';
import type { DeviceEvent } from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';

export type ApplyDeviceEvent = Extract<DeviceEvent, { type: 'apply' }>;
export type RollbackDeviceEvent = Extract<DeviceEvent, { type: 'rollback' }>;

/** Who stamps events: the device, the time, and a fresh id (so the controller stores each once). */
export interface EventSource {
  device: string;
  clock: Clock;
  newId?: () => string;
}

export function eventHeader(source: EventSource): { id: string; device: string; at: string } {
  return {
    id: (source.newId ?? randomUUID)(),
    device: source.device,
    at: new Date(source.clock.now()).toISOString(),
  };
}

/** An image named with its local id: an auto-update keeps the reference and changes the image. */
export function imageWithId(image: string, imageId: string | undefined): string {
  return imageId ? `${image} (${imageId.slice(0, 12)})` : image;
}
