import { z } from 'zod';
import { DeviceId } from '@podfleet/shared';
import { SelectorText } from '../desired/index.js';
import { ServiceName } from '../services/schemas.js';

/** A group name: also an audit target (`group/edge`) and a CLI argument, so kept plain. */
export const GroupName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, {
  message: 'must match [a-z0-9][a-z0-9._-]{0,62}',
});

/** Higher wins when two groups assign or pin the same service. */
export const Priority = z.number().int().min(-1_000_000).max(1_000_000);

const Members = z.array(DeviceId).max(10_000);

export const CreateGroup = z.strictObject({
  name: GroupName,
  /** Label selector; omit (or null) for a group of explicit members only. */
  selector: SelectorText.nullable().optional(),
  priority: Priority.default(0),
  members: Members.default([]),
});

export const UpdateGroup = z.strictObject({
  selector: SelectorText.nullable().optional(),
  priority: Priority.optional(),
});

export const GroupMembers = z.strictObject({ members: Members });

export const AssignRevision = z.strictObject({
  /** A revision of the service; the latest when omitted. */
  revision: z.number().int().positive().optional(),
});

export const GroupParams = z.strictObject({ name: GroupName });
export const AssignmentParams = z.strictObject({ name: GroupName, service: ServiceName });

export const AssignmentView = z.object({
  group: z.string(),
  service: z.string(),
  revision: z.number().int(),
  updatedAt: z.date(),
});
export type AssignmentView = z.input<typeof AssignmentView>;

export const GroupView = z.object({
  name: z.string(),
  /** Canonical form (see formatSelector); null: explicit members only. */
  selector: z.string().nullable(),
  priority: z.number().int(),
  /** Explicit members; the selector may add more (GET /v1/groups/:name lists them all). */
  members: z.array(z.string()),
  services: z.array(z.object({ service: z.string(), revision: z.number().int() })),
  pins: z.array(z.object({ id: z.string(), service: z.string(), image: z.string() })),
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type GroupView = z.input<typeof GroupView>;

export const GroupDetailView = GroupView.extend({
  /** Every device in the group now: listed or matching the selector, by id. */
  devices: z.array(z.string()),
});
export type GroupDetailView = z.input<typeof GroupDetailView>;
