import { z } from 'zod';
import { DeviceId } from '../manifest/device-id.js';
import { DEVICE_LIMITS, deviceCount, deviceText, deviceTime } from './limits.js';

const name = deviceText(DEVICE_LIMITS.name);

/** systemd's ActiveState of a unit (systemctl show -p ActiveState). */
export const ActiveState = z.enum([
  'active', 'reloading', 'inactive', 'failed', 'activating', 'deactivating', 'maintenance', 'refreshing',
]); // prettier-ignore

/**
 * What a service is doing, judged by the agent from systemd and Podman over time (its
 * `observeService`): `ready` only while the unit is active and running, its container running
 * (and healthy where it has a health check) and its restart count unchanged since the last look.
 */
export const ServiceHealth = z.enum([
  'ready', 'starting', 'crash-looping', 'unhealthy', 'failed', 'stopped', 'drifted',
]); // prettier-ignore
export type ServiceHealth = z.infer<typeof ServiceHealth>;

/** Journal lines a state report carries per service that is not ready. */
export const STATE_JOURNAL_LINES = 10;

/** An image the agent rolled back from, which auto-update will not update to again. */
export const RejectedImage = z.strictObject({
  /** The reference it came under (the spec's image). */
  image: deviceText(DEVICE_LIMITS.image),
  /** Its local image id (sha256 hex) and its manifest digest (`sha256:…`) when known. */
  imageId: name,
  digest: name.optional(),
  /** When it was rejected, by the device's clock. */
  at: deviceTime,
  reason: deviceText(DEVICE_LIMITS.text),
});
export type RejectedImage = z.output<typeof RejectedImage>;

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
  /** `health === 'ready'`; kept for controllers that read only this. */
  ready: z.boolean(),
  /** Absent from agents before 0.2. */
  health: ServiceHealth.optional(),
  /** Why it is not ready, in one line. */
  reason: deviceText(DEVICE_LIMITS.text).optional(),
  /** The unit's last journald lines, when it is not ready. */
  journal: z.array(deviceText(DEVICE_LIMITS.journalLine)).max(STATE_JOURNAL_LINES).optional(),
  /** The image auto-update skips after it was rolled back from, until a new one or a retry. */
  rejected: RejectedImage.optional(),
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
