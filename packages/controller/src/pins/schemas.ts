import { z } from 'zod';
import { DeviceId } from '@podfleet/shared';
import { PinnedImage } from '../desired/index.js';
import { GroupName } from '../groups/schemas.js';
import { PageQuery } from '../http/pages.js';
import { ServiceName } from '../services/schemas.js';

/** A pin names exactly one of a group or a device; the issue names the field to fix. */
export const SetPin = z
  .strictObject({
    group: GroupName.optional(),
    device: DeviceId.optional(),
    service: ServiceName,
    image: PinnedImage,
  })
  .superRefine((pin, ctx) => {
    if (pin.group !== undefined && pin.device !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['device'], message: 'give group or device, not both' });
    } else if (pin.group === undefined && pin.device === undefined) {
      ctx.addIssue({ code: 'custom', path: ['group'], message: 'give group or device' });
    }
  });

export const PinQuery = z.strictObject({
  group: GroupName.optional(),
  device: DeviceId.optional(),
  service: ServiceName.optional(),
  ...PageQuery,
});

export const PinParams = z.strictObject({ id: z.uuid() });

export const PinView = z.object({
  id: z.string(),
  group: z.string().nullable(),
  device: z.string().nullable(),
  service: z.string(),
  image: z.string(),
  createdAt: z.date(),
});
export type PinView = z.input<typeof PinView>;
