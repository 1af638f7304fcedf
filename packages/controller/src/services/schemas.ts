import { z } from 'zod';
import { SERVICE_NAME, ServiceSpec } from '@podfleet/shared';
import { PageQuery } from '../http/pages.js';

export const ServiceName = z.string().regex(SERVICE_NAME, {
  message: 'must match [a-z0-9][a-z0-9-]{0,62}',
});

export const ApplyService = z.strictObject({
  spec: ServiceSpec,
  /** Store the spec even where its image differs from what a rollout put in place (409 else). */
  force: z.boolean().default(false),
});

export const ServiceParams = z.strictObject({ name: ServiceName });
export const RevisionParams = z.strictObject({
  name: ServiceName,
  revision: z.coerce.number().int().positive(),
});
export const ServiceListQuery = z.strictObject(PageQuery);

/**
 * A stored spec: a ServiceSpec with every default filled in and durations in seconds. Typed as a
 * record here because responses are encoded, and the spec schema's duration parsing is one-way.
 */
const StoredSpec = z.record(z.string(), z.unknown());

export const RevisionView = z.object({
  service: z.string(),
  revision: z.number().int(),
  image: z.string(),
  spec: StoredSpec,
  createdAt: z.date(),
});
export type RevisionView = z.input<typeof RevisionView>;

export const AppliedRevision = RevisionView.extend({
  /** False when the spec equals the latest revision's: nothing was stored. */
  created: z.boolean(),
});

const LatestRevision = z.object({
  revision: z.number().int(),
  image: z.string(),
  createdAt: z.date(),
});

export const ServiceSummary = z.object({
  name: z.string(),
  createdAt: z.date(),
  latest: LatestRevision.nullable(),
  /** How many devices run it under which image (compliance/versions.ts), most devices first. */
  running: z.array(
    z.object({
      image: z.string(),
      devices: z.number().int(),
      imageIds: z.array(z.object({ imageId: z.string().nullable(), devices: z.number().int() })),
    }),
  ),
});
export type ServiceSummary = z.input<typeof ServiceSummary>;

export const ServiceDetail = z.object({
  name: z.string(),
  createdAt: z.date(),
  latest: RevisionView.nullable(),
  /** Which group runs which revision. */
  assignedTo: z.array(z.object({ group: z.string(), revision: z.number().int() })),
  pins: z.array(
    z.object({
      id: z.string(),
      group: z.string().nullable(),
      device: z.string().nullable(),
      image: z.string(),
    }),
  ),
});
export type ServiceDetail = z.input<typeof ServiceDetail>;
