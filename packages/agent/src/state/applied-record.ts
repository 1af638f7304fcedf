import { RejectedImage, ServiceSpec } from '@podfleet/shared';
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
  /**
   * The good version before this one (its backup, kept when this one passed its gate): where a
   * crash loop of this version rolls back to, once.
   */
  previous: z.lazy(() => ServiceBackup).optional(),
  /** The image this service rolled back from, which auto-update skips (RejectedImage). */
  rejected: RejectedImage.optional(),
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
 * that a rollback (even after the agent crashed mid-change) can put it back. Left in the state
 * directory, it is an unfinished change: the agent resolves it at start (interrupted.ts).
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
  /** The previous version's spec, recorded again when it is restored (absent: a fresh install). */
  spec: ServiceSpec.optional(),
  /** What made the change: an apply of a manifest, or an auto-update (absent in older backups). */
  origin: z.enum(['apply', 'auto-update']).optional(),
  /** For an apply: the version it was installing, to record it if it turns out to run. */
  target: z
    .strictObject({
      generation: z.number().int().min(0),
      spec: ServiceSpec,
      files: z.array(StoredUnitFile),
    })
    .optional(),
});
export type ServiceBackup = z.output<typeof ServiceBackup>;

/** The controller keys trusted after a key rotation (trusted-keys.json): PEM public keys. */
export const TrustedKeys = z.strictObject({
  keys: z.array(z.string().includes('BEGIN PUBLIC KEY')).min(1),
});
