import { ServiceSpec } from '@podfleet/shared';
import { z } from 'zod';

export const StoredUnitFile = z.strictObject({
  name: z.string(),
  kind: z.enum(['systemd', 'quadlet']),
  contents: z.string(),
});

/** A service as it last passed the health gate on this device: the last good version. */
export const AppliedService = z.strictObject({
  spec: ServiceSpec,
  /** The unit files exactly as written. */
  files: z.array(StoredUnitFile),
  /** The local image id the gated container ran: what a rollback re-tags the reference to. */
  imageId: z.string().optional(),
});
export type AppliedService = z.output<typeof AppliedService>;

/** A change that failed its health gate and was rolled back; not retried within its generation. */
export const FailedChange = z.strictObject({
  name: z.string(),
  generation: z.number().int().min(0),
  image: z.string(),
  files: z.array(StoredUnitFile),
  reason: z.string(),
});
export type FailedChange = z.output<typeof FailedChange>;

/** What the agent has applied; kept in the state directory across restarts. */
export const AppliedRecord = z.strictObject({
  /** The last manifest generation the agent accepted and acted on (0: none). */
  generation: z.number().int().min(0),
  style: z.enum(['service', 'quadlet']),
  services: z.array(AppliedService),
  failed: z.array(FailedChange).default([]),
});
export type AppliedRecord = z.output<typeof AppliedRecord>;

/**
 * A service's units, image and state before a change touched it, saved before the first write so
 * that a rollback (even after the agent crashed mid-change) can put it back.
 */
export const ServiceBackup = z.strictObject({
  name: z.string(),
  /** Its unit files before the change; empty when the change installs it. */
  files: z.array(StoredUnitFile),
  image: z.string().optional(),
  imageId: z.string().optional(),
  /** Units that were enabled / running before the change. */
  enabled: z.array(z.string()),
  active: z.array(z.string()),
  /** The previous version's gate, used to check the restored one. */
  ready: z.strictObject({ timeout: z.number(), settle: z.number() }),
  health: z.boolean(),
});
export type ServiceBackup = z.output<typeof ServiceBackup>;

/** The controller keys trusted after a key rotation (trusted-keys.json): PEM public keys. */
export const TrustedKeys = z.strictObject({
  keys: z.array(z.string().includes('BEGIN PUBLIC KEY')).min(1),
});
