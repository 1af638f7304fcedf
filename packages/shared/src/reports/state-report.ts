import { z } from 'zod';
import { DeviceId } from '../manifest/device-id.js';
import { DEVICE_LIMITS, deviceCount, deviceText, deviceTime } from './limits.js';

const name = deviceText(DEVICE_LIMITS.name);

/** systemd's ActiveState of a unit (systemctl show -p ActiveState). */
export const ActiveState = z.enum([
  'active', 'reloading', 'inactive', 'failed', 'activating', 'deactivating', 'maintenance', 'refreshing',
]); // prettier-ignore

export const ServiceState = z.strictObject({
  name,
  /** The image the unit was written for, as the manifest named it. */
  image: deviceText(DEVICE_LIMITS.image),
  /** The local image id (sha256) the container runs, when one runs. */
  imageId: name.optional(),
  unit: z.strictObject({
    active: ActiveState,
    sub: name,
    restarts: deviceCount,
    /** When the unit last entered active (systemd's ActiveEnterTimestamp); absent if never. */
    activeSince: deviceTime.optional(),
  }),
  container: z
    .strictObject({
      id: name,
      state: name,
      health: z.enum(['healthy', 'unhealthy', 'starting', 'none']).default('none'),
    })
    .optional(),
  /** The agent's health gate: active (and healthy) and settled. */
  ready: z.boolean(),
});
export type ServiceState = z.output<typeof ServiceState>;

/** What an agent publishes, retained, to pf/v1/dev/{id}/state. */
export const StateReport = z.strictObject({
  device: DeviceId,
  /** The manifest generation the device runs (0: none applied yet). */
  generation: deviceCount,
  /** By the device's clock: kept and shown as the device's own, never used to order reports. */
  reportedAt: deviceTime,
  agent: z.strictObject({ version: name }),
  host: z.strictObject({
    podman: name,
    systemd: name,
    arch: name,
    unitStyle: z.enum(['service', 'quadlet']),
  }),
  services: z.array(ServiceState).max(DEVICE_LIMITS.services),
});
export type StateReport = z.output<typeof StateReport>;

/** pf/v1/dev/{id}/online, retained; the agent's last will says `offline`. */
export const OnlineStatus = z.enum(['online', 'offline']);
export type OnlineStatus = z.infer<typeof OnlineStatus>;
