import { z } from 'zod';
import { duration, NewDeviceId } from '@podfleet/shared';
import { Labels } from '../desired/index.js';
import { GroupName } from '../groups/schemas.js';
import { PageQuery } from '../http/pages.js';
import { DeviceView } from '../devices/schemas.js';

const MAX_TTL = 30 * 86_400;

export const CreateEnrollmentToken = z.strictObject({
  /** How long the token may be used: seconds or 10m, 24h, … (one minute to 30 days). */
  ttl: duration.pipe(
    z
      .number()
      .min(60, { message: 'must be at least 60s' })
      .max(MAX_TTL, { message: 'must be at most 720h (30 days)' }),
  ),
  /** Labels the enrolled device starts with (they win over labels the device asks for). */
  labels: Labels.default({}),
  /** A group the enrolled device joins as an explicit member. */
  group: GroupName.optional(),
});

export const EnrollmentTokenQuery = z.strictObject(PageQuery);
export const EnrollmentTokenParams = z.strictObject({ id: z.uuid() });

export const EnrollmentTokenView = z.object({
  id: z.string(),
  state: z.enum(['active', 'used', 'expired']),
  expiresAt: z.date(),
  usedAt: z.date().nullable(),
  labels: z.record(z.string(), z.string()),
  group: z.string().nullable(),
  createdAt: z.date(),
});
export type EnrollmentTokenView = z.input<typeof EnrollmentTokenView>;

export const IssuedEnrollmentToken = EnrollmentTokenView.extend({
  /** The one-time token: shown here once, stored only as its hash. */
  token: z.string(),
});

export const Enroll = z.strictObject({
  token: z.string().min(1).max(200),
  device: NewDeviceId,
  labels: Labels.default({}),
});

export const Enrolled = z.object({
  device: DeviceView,
  /** What credential issuers gave the device, by issuer name (see CredentialIssuer). */
  credentials: z.record(z.string(), z.record(z.string(), z.unknown())),
});
