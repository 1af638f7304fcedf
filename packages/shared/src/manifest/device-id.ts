import { z } from 'zod';

/** A device id: also an MQTT topic level, so no `/`, `+`, `#` or blanks. */
export const DeviceId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
  message: 'must match [A-Za-z0-9][A-Za-z0-9._-]{0,127} (it is an MQTT topic level)',
});
export type DeviceId = z.infer<typeof DeviceId>;

/**
 * Controllers' MQTT client ids start with this (PODFLEET_CONTROLLER_ID), and no new device's id
 * may: the broker gives a device its id as client id, and a client id taken by another client ends
 * that client's connection (docs/decisions/007-device-broker-identity.md).
 */
export const CONTROLLER_ID_PREFIX = 'podfleet-controller';

/** Whether `id` is in the controllers' client-id space (any letter case: brokers differ). */
export function isControllerId(id: string): boolean {
  return id.toLowerCase().startsWith(CONTROLLER_ID_PREFIX);
}

/** The id of a device being created: a DeviceId outside the controllers' client ids. */
export const NewDeviceId = DeviceId.refine((id) => !isControllerId(id), {
  message: `must not start with ${CONTROLLER_ID_PREFIX} (reserved for controllers' MQTT client ids)`,
});
