import { verifyManifest, type DeviceManifest } from '@podfleet/shared';
import { eventHeader, type ApplyDeviceEvent, type EventSource } from './events.js';
import { failureWithoutJournal } from './failure.js';

export interface AcceptContext {
  /** This device's id. */
  device: string;
  /** The controller public keys (PEM) a manifest may be signed with. */
  trustedKeys: readonly string[];
  /** The generation the agent last accepted (0: none). */
  appliedGeneration: number;
}

export type Acceptance =
  | {
      ok: true;
      manifest: DeviceManifest;
      /**
       * Set when the manifest carried a controller key rotation announced by a trusted key: the
       * keys to trust from now on (persist them before acting; the old key is refused after).
       */
      trustedKeys?: readonly string[];
    }
  | { ok: false; reason: string; generation: number };

/**
 * Whether to act on a manifest received on the desired topic: valid, signed by a trusted key (or
 * by a new key its keyChain shows a trusted key announced), for this device, and newer than the
 * applied one (a retained or replayed old one is not). A rejected manifest changes nothing on the
 * host, nor the keys trusted: what runs keeps running.
 */
export function acceptManifest(input: unknown, context: AcceptContext): Acceptance {
  let body = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      body = JSON.parse(typeof input === 'string' ? input : Buffer.from(input).toString('utf8'));
    } catch {
      return { ok: false, reason: 'manifest is not JSON', generation: 0 };
    }
  }
  const generation = claimedGeneration(body);
  const verified = verifyManifest(body, context.trustedKeys);
  if (!verified.ok) return { ok: false, reason: verified.reason, generation };
  const { manifest } = verified;
  if (manifest.device !== context.device) {
    return {
      ok: false,
      reason: `manifest is for device ${manifest.device}, not ${context.device}`,
      generation,
    };
  }
  if (manifest.generation <= context.appliedGeneration) {
    return {
      ok: false,
      reason: `generation ${manifest.generation} is not newer than applied generation ${context.appliedGeneration}`,
      generation,
    };
  }
  return verified.rotatedTo
    ? { ok: true, manifest, trustedKeys: verified.rotatedTo }
    : { ok: true, manifest };
}

/** The apply event that reports a rejected manifest. */
export function rejectionEvent(
  rejection: Extract<Acceptance, { ok: false }>,
  source: EventSource,
): ApplyDeviceEvent {
  return {
    ...eventHeader(source),
    type: 'apply',
    generation: rejection.generation,
    result: 'rejected',
    services: [],
    reason: rejection.reason,
    failure: failureWithoutJournal({ reason: 'rejected-manifest', detail: rejection.reason }),
  };
}

/** The generation a manifest claims, for the report; 0 when it names none that is usable. */
function claimedGeneration(body: unknown): number {
  if (typeof body !== 'object' || body === null) return 0;
  const generation = (body as Record<string, unknown>).generation;
  return typeof generation === 'number' && Number.isSafeInteger(generation) && generation >= 0
    ? generation
    : 0;
}
