import { parseImageReference, type ServiceSpec } from '@podfleet/shared';
import type { Group } from './membership.js';
import { pinProblem } from './pins.js';

/** Which rule chose a service's image on a device, strongest first (docs/contract.md). */
export type ImageRule = 'device pin' | 'group pin' | 'rollout' | 'revision';

/** owner (a device id or a group name) → service name → value. */
export type ServiceTable<T> = ReadonlyMap<string, ReadonlyMap<string, T>>;

/** Images pinned by digest: device id → service → image, and group name → service → image. */
export interface Pins {
  readonly devices: ServiceTable<string>;
  readonly groups: ServiceTable<string>;
}

/**
 * What a rollout gives a device now. An image alone ranks below pins; with `overGroupPin` (the
 * rollout names the pinning group) it also beats a group pin, never a device pin.
 */
export type RolloutImage = string | { readonly image: string; readonly overGroupPin: boolean };

/** Images rollouts give devices now: device id → service → image. */
export type RolloutOverrides = ServiceTable<RolloutImage>;

export interface PinClaim {
  readonly group: string;
  readonly image: string;
}

export type ImageChoice =
  | {
      readonly kind: 'chosen';
      readonly spec: ServiceSpec;
      readonly rule: ImageRule;
      /** For a group pin: the groups (of the highest priority that pins) that pin this image. */
      readonly pinGroups: readonly string[];
    }
  | { readonly kind: 'pin conflict'; readonly priority: number; readonly claims: PinClaim[] };

/**
 * The image for one service on one device: device pin › pin of the highest-priority group (among
 * the device's groups, ranked) › active rollout › the revision's own image. Pins are by digest and
 * turn auto-update off. Throws, naming the table entry, on a pin or rollout image that cannot be.
 */
export function chooseImage(
  device: string,
  spec: ServiceSpec,
  memberOf: readonly Group[],
  pins: Pins,
  rollouts: RolloutOverrides,
): ImageChoice {
  const service = spec.name;
  const devicePin = pins.devices.get(device)?.get(service);
  if (devicePin !== undefined) {
    return chosen(pinned(spec, devicePin, `pins.devices.${device}.${service}`), 'device pin');
  }
  const override = rollouts.get(device)?.get(service);
  const rollout = typeof override === 'string' ? override : override?.image;
  const field = `rollouts.${device}.${service}`;
  if (rollout !== undefined && typeof override === 'object' && override.overGroupPin) {
    return chosen(rolledOut(spec, rollout, field), 'rollout');
  }
  const groupPins = highestGroupPins(service, memberOf, pins);
  if (groupPins) {
    const images = new Set(groupPins.claims.map((claim) => claim.image));
    if (images.size > 1) return { kind: 'pin conflict', ...groupPins };
    const [first] = groupPins.claims;
    const field = `pins.groups.${first!.group}.${service}`;
    const groups = groupPins.claims.map((claim) => claim.group);
    return chosen(pinned(spec, first!.image, field), 'group pin', groups);
  }
  if (rollout !== undefined) return chosen(rolledOut(spec, rollout, field), 'rollout');
  return chosen(spec, 'revision');
}

function chosen(spec: ServiceSpec, rule: ImageRule, pinGroups: readonly string[] = []) {
  return { kind: 'chosen', spec, rule, pinGroups } as const;
}

/** The pins of the highest priority at which any of the device's groups pins the service. */
function highestGroupPins(service: string, memberOf: readonly Group[], pins: Pins) {
  let priority: number | undefined;
  const claims: PinClaim[] = [];
  for (const group of memberOf) {
    if (priority !== undefined && group.priority !== priority) break;
    const image = pins.groups.get(group.name)?.get(service);
    if (image === undefined) continue;
    priority = group.priority;
    claims.push({ group: group.name, image });
  }
  return priority === undefined ? undefined : { priority, claims };
}

// One derived spec per (revision spec, rule, image), shared by every device that gets it: a pin or
// a rollout of 10,000 devices yields one object, which manifest hashing serializes once. Derived
// specs are never mutated (they go into manifests as they are).
const derived = new WeakMap<ServiceSpec, Map<string, ServiceSpec>>();

function memoized(spec: ServiceSpec, key: string, derive: () => ServiceSpec): ServiceSpec {
  let specs = derived.get(spec);
  if (!specs) derived.set(spec, (specs = new Map()));
  let result = specs.get(key);
  if (!result) specs.set(key, (result = derive()));
  return result;
}

function pinned(spec: ServiceSpec, image: string, field: string): ServiceSpec {
  return memoized(spec, `pin\0${image}`, () => {
    const problem = pinProblem(image);
    if (problem) throw new Error(`${field}: ${problem}, got ${JSON.stringify(image)}`);
    return { ...spec, image, autoUpdate: 'off' };
  });
}

function rolledOut(spec: ServiceSpec, image: string, field: string): ServiceSpec {
  return memoized(spec, `rollout\0${image}`, () => {
    const reference = parseImageReference(image);
    if (!reference) throw new Error(`${field}: not an image reference: ${JSON.stringify(image)}`);
    if (spec.autoUpdate !== 'registry') return { ...spec, image };
    // Podman's registry policy follows a tag: a digest cannot be followed, a short name has no registry.
    if (reference.digest) return { ...spec, image, autoUpdate: 'off' };
    if (!reference.registry) {
      throw new Error(`${field}: autoUpdate registry needs a fully qualified image, got ${image}`);
    }
    return { ...spec, image };
  });
}
