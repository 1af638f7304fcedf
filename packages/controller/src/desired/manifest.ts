import { createHash } from 'node:crypto';
import { canonicalJson, type ServiceSpec, type UnsignedManifest } from '@podfleet/shared';

/** The part of a manifest that says what to run: what generation bumps are about. */
export type ManifestContent = Pick<UnsignedManifest, 'device' | 'services'>;

const byName = (a: { name: string }, b: { name: string }) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/** A device's manifest, services sorted by name so that equal content gives equal bytes. */
export function buildManifest(
  device: string,
  services: readonly ServiceSpec[],
  generation: number,
  issuedAt: Date,
): UnsignedManifest {
  return {
    device,
    generation,
    issuedAt: issuedAt.toISOString(),
    services: [...services].sort(byName),
  };
}

/**
 * Whether next says something previous does not: compares device and services (in name order) by
 * canonical JSON, ignoring generation, issuedAt and signature. Both sides hold parsed specs
 * (defaults filled in), as buildManifest and a stored signed manifest do.
 */
export function manifestChanged(previous: ManifestContent | undefined, next: ManifestContent) {
  if (previous === undefined) return true;
  return manifestContentJson(previous) !== manifestContentJson(next);
}

/**
 * The canonical JSON of what a manifest says (device and services by name): equal text, equal
 * content. contentHash is its SHA-256, stored beside each published manifest.
 */
export function manifestContentJson(manifest: ManifestContent): string {
  return canonicalJson({ device: manifest.device, services: [...manifest.services].sort(byName) });
}

// Resolved specs are shared between devices (a revision's spec, or image-rule's derived ones), so
// each is serialized once per recompute, not once per device: the fan-out path's main cost was this.
const specJson = new WeakMap<ServiceSpec, string>();

function canonicalSpec(spec: ServiceSpec): string {
  let text = specJson.get(spec);
  if (text === undefined) specJson.set(spec, (text = canonicalJson(spec)));
  return text;
}

/**
 * SHA-256 (base64url) of manifestContentJson({ device, services }), built from per-spec canonical
 * JSON: two manifests say the same exactly when their hashes are equal. Specs must not be mutated
 * after they were hashed (the text is kept per object).
 */
export function contentHash(device: string, services: readonly ServiceSpec[]): string {
  const parts = [...services].sort(byName).map(canonicalSpec);
  // canonicalJson's own layout: keys sorted ("device" < "services"), no whitespace.
  const text = `{"device":${JSON.stringify(device)},"services":[${parts.join(',')}]}`;
  return createHash('sha256').update(text).digest('base64url');
}

/**
 * The manifest to publish after a change, with the generation after previous's; undefined when
 * nothing real changed, so the device's generation stays and nothing is republished.
 */
export function nextManifest(
  previous: (ManifestContent & { generation: number }) | undefined,
  device: string,
  services: readonly ServiceSpec[],
  issuedAt: Date,
): UnsignedManifest | undefined {
  const next = buildManifest(device, services, (previous?.generation ?? 0) + 1, issuedAt);
  return manifestChanged(previous, next) ? next : undefined;
}
