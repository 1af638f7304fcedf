import { z } from 'zod';
import { DeviceId, NewDeviceId } from '@podfleet/shared';
import { LabelKey, LabelValue, SelectorText } from '../desired/index.js';
import { GroupName } from '../groups/schemas.js';
import { PageQuery } from '../http/pages.js';
import { ComplianceState } from '../compliance/compliance.js';

export const DeviceParams = z.strictObject({ id: DeviceId });

export const DeviceQuery = z.strictObject({
  /** Label selector: `site=berlin,tier in (edge,gw)`. */
  selector: SelectorText.optional(),
  online: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .optional(),
  /** Devices in this group: listed or matching its selector. */
  group: GroupName.optional(),
  /** Devices whose overall compliance is this (docs/decisions/012-compliance.md). */
  compliance: ComplianceState.optional(),
  ...PageQuery,
});

/** A device registered ahead of its agent (provisioning): its id and first labels. */
export const NewDevice = z.strictObject({
  id: NewDeviceId,
  labels: z.record(LabelKey, LabelValue).default({}),
});

/** JSON merge patch (RFC 7396) of the labels: a value sets a label, null removes it. */
export const PatchDevice = z.strictObject({
  labels: z.record(LabelKey, LabelValue.nullable()),
});

const Labels = z.record(z.string(), z.string());

const ComplianceFailureView = z.object({
  reason: z.string(),
  detail: z.string(),
  unit: z.string().optional(),
  journal: z.array(z.string()).readonly().optional(),
});

/** The device against its desired manifest, per service and overall (compliance/compliance.ts). */
export const ComplianceView = z.object({
  state: ComplianceState,
  services: z.array(
    z.object({
      service: z.string(),
      state: ComplianceState,
      desired: z.string().nullable(),
      running: z.string().nullable(),
      imageId: z.string().optional(),
      failure: ComplianceFailureView.optional(),
    }),
  ),
});

export const DeviceView = z.object({
  id: z.string(),
  labels: Labels,
  online: z.boolean(),
  lastSeen: z.date().nullable(),
  agentVersion: z.string().nullable(),
  podmanVersion: z.string().nullable(),
  systemdVersion: z.string().nullable(),
  arch: z.string().nullable(),
  unitStyle: z.enum(['service', 'quadlet']).nullable(),
  /** The generation of the manifest published to the device. */
  desiredGeneration: z.number().int(),
  /** The generation the device last reported applied. */
  appliedGeneration: z.number().int(),
  compliance: ComplianceView,
  createdAt: z.date(),
  updatedAt: z.date(),
});
export type DeviceView = z.input<typeof DeviceView>;

export const DeviceDetailView = DeviceView.extend({
  /** The groups the device is in now, highest priority first. */
  groups: z.array(z.string()),
  pins: z.array(z.object({ id: z.string(), service: z.string(), image: z.string() })),
  /** The last state report, as the device sent it. */
  lastState: z.record(z.string(), z.unknown()).nullable(),
});
export type DeviceDetailView = z.input<typeof DeviceDetailView>;

const AssignmentClaim = z.object({
  group: z.string(),
  priority: z.number(),
  revision: z.number(),
});

const Resolution = z.object({
  service: z.string(),
  revision: z.number(),
  priority: z.number(),
  assignedBy: z.array(z.string()).readonly(),
  outranked: z.array(AssignmentClaim).readonly(),
  image: z.string(),
  rule: z.enum(['device pin', 'group pin', 'rollout', 'revision']),
  pinGroups: z.array(z.string()).readonly(),
  pinned: z.boolean(),
  autoUpdate: z.enum(['registry', 'local', 'off']),
  summary: z.string(),
});

const Conflict = z.discriminatedUnion('kind', [
  z.object({
    service: z.string(),
    kind: z.literal('revision'),
    priority: z.number(),
    claims: z.array(AssignmentClaim).readonly(),
    message: z.string(),
  }),
  z.object({
    service: z.string(),
    kind: z.literal('pin'),
    priority: z.number(),
    claims: z.array(z.object({ group: z.string(), image: z.string() })).readonly(),
    message: z.string(),
  }),
]);

/** Why the device runs what it runs, computed now (Fleet.explain). */
export const Explanation = z.object({
  device: z.string(),
  /** The service specs, image chosen, as the next manifest would carry them. */
  services: z.array(z.record(z.string(), z.unknown())).readonly(),
  resolutions: z.array(Resolution).readonly(),
  conflicts: z.array(Conflict).readonly(),
});

export const ManifestView = z.object({
  device: z.string(),
  desiredGeneration: z.number().int(),
  appliedGeneration: z.number().int(),
  /** The signed DeviceManifest last published; null before the first one. */
  manifest: z.record(z.string(), z.unknown()).nullable(),
  explanation: Explanation.nullable(),
});
