import { z } from 'zod';
import { DeviceId } from '../manifest/device-id.js';

/** systemd's ActiveState of a unit (systemctl show -p ActiveState). */
export const ActiveState = z.enum([
  'active', 'reloading', 'inactive', 'failed', 'activating', 'deactivating', 'maintenance', 'refreshing',
]); // prettier-ignore

export const ServiceState = z.strictObject({
  name: z.string(),
  /** The image the unit was written for, as the manifest named it. */
  image: z.string(),
  /** The local image id (sha256) the container runs, when one runs. */
  imageId: z.string().optional(),
  unit: z.strictObject({
    active: ActiveState,
    sub: z.string(),
    restarts: z.number().int().min(0),
    /** When the unit last entered active (systemd's ActiveEnterTimestamp); absent if never. */
    activeSince: z.iso.datetime().optional(),
  }),
  container: z
    .strictObject({
      id: z.string(),
      state: z.string(),
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
  generation: z.number().int().min(0),
  reportedAt: z.iso.datetime(),
  agent: z.strictObject({ version: z.string() }),
  host: z.strictObject({
    podman: z.string(),
    systemd: z.string(),
    arch: z.string(),
    unitStyle: z.enum(['service', 'quadlet']),
  }),
  services: z.array(ServiceState),
});
export type StateReport = z.output<typeof StateReport>;

/** pf/v1/dev/{id}/online, retained; the agent's last will says `offline`. */
export const OnlineStatus = z.enum(['online', 'offline']);
export type OnlineStatus = z.infer<typeof OnlineStatus>;
