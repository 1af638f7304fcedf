import { z } from 'zod';

/** A device id: also an MQTT topic level, so no `/`, `+`, `#` or blanks. */
export const DeviceId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, {
  message: 'must match [A-Za-z0-9][A-Za-z0-9._-]{0,127} (it is an MQTT topic level)',
});
export type DeviceId = z.infer<typeof DeviceId>;
