import type { DeviceManifest } from '@podfleet/shared';
import { acceptManifest, type Acceptance } from '../reconcile/accept.js';

export type Intake =
  /** Newer than anything applied, being applied or waiting: apply it (skipping any waiting one). */
  | { kind: 'apply'; manifest: DeviceManifest; trustedKeys?: readonly string[] }
  /** The generation the agent has already (the retained manifest again on reconnect): no news. */
  | { kind: 'same'; manifest: DeviceManifest; trustedKeys?: readonly string[] }
  | { kind: 'reject'; rejection: Extract<Acceptance, { ok: false }> };

/**
 * Sorts a manifest from the desired topic. Schema, signature and device are acceptManifest's
 * checks; the generation is compared with the newest one known (applied, being applied or
 * waiting), so that an older one — a replay — is rejected while the retained copy of the current
 * one, delivered on every subscribe, is quietly recognised.
 */
export function takeDesired(
  payload: Buffer,
  context: { device: string; trustedKeys: readonly string[]; newestGeneration: number },
): Intake {
  const acceptance = acceptManifest(payload, {
    device: context.device,
    trustedKeys: context.trustedKeys,
    appliedGeneration: 0,
  });
  if (!acceptance.ok) return { kind: 'reject', rejection: acceptance };
  const { manifest } = acceptance;
  // A key rotation the manifest carried (see acceptManifest): the caller saves the new trust.
  const rotated = acceptance.trustedKeys ? { trustedKeys: acceptance.trustedKeys } : {};
  const newest = context.newestGeneration;
  if (manifest.generation > newest) return { kind: 'apply', manifest, ...rotated };
  if (manifest.generation === newest) return { kind: 'same', manifest, ...rotated };
  return {
    kind: 'reject',
    rejection: {
      ok: false,
      generation: manifest.generation,
      reason: `generation ${manifest.generation} is not newer than applied generation ${newest}`,
    },
  };
}
