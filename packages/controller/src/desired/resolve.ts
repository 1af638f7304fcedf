import type { ServiceSpec } from '@podfleet/shared';
import {
  chooseImage,
  type ImageRule,
  type PinClaim,
  type Pins,
  type RolloutOverrides,
  type ServiceTable,
} from './image-rule.js';
import { groupsOf, membership, type Group, type LabeledDevice } from './membership.js';

/** An immutable revision of a service. */
export interface Revision {
  readonly number: number;
  readonly spec: ServiceSpec;
}

/** What decides desired state besides membership. */
export interface DesiredSources {
  /** group name → service name → assigned revision. */
  readonly assignments: ServiceTable<Revision>;
  readonly pins: Pins;
  readonly rollouts: RolloutOverrides;
}

export interface DesiredStateInput extends DesiredSources {
  readonly device: LabeledDevice;
  /** Every group; the device's own are found by groupsOf. */
  readonly groups: readonly Group[];
}

/** One group assigning one revision of a service to the device. */
export interface AssignmentClaim {
  readonly group: string;
  readonly priority: number;
  readonly revision: number;
}

/** Why a service runs on the device the way it does. */
export interface ServiceResolution {
  readonly service: string;
  readonly revision: number;
  /** The priority at which the revision was assigned; and the groups that assigned it there. */
  readonly priority: number;
  readonly assignedBy: readonly string[];
  /** Assignments of lower-priority groups that lost. */
  readonly outranked: readonly AssignmentClaim[];
  readonly image: string;
  readonly rule: ImageRule;
  /** For a group pin: the pinning groups. */
  readonly pinGroups: readonly string[];
  readonly pinned: boolean;
  readonly autoUpdate: ServiceSpec['autoUpdate'];
  /** One line for operators: `revision 3 from berlin (priority 10); image pinned by group edge`. */
  readonly summary: string;
}

/** A service left out of the device's manifest because the rules do not decide it. */
export type ServiceConflict =
  | {
      readonly service: string;
      readonly kind: 'revision';
      readonly priority: number;
      readonly claims: readonly AssignmentClaim[];
      readonly message: string;
    }
  | {
      readonly service: string;
      readonly kind: 'pin';
      readonly priority: number;
      readonly claims: readonly PinClaim[];
      readonly message: string;
    };

export interface DesiredState {
  readonly device: string;
  /** The specs to run, image resolved, sorted by name. */
  readonly services: readonly ServiceSpec[];
  readonly resolutions: readonly ServiceResolution[];
  readonly conflicts: readonly ServiceConflict[];
}

/** What one device must run and why. Pure; same inputs in any order give the same answer. */
export function resolveDesiredState(input: DesiredStateInput): DesiredState {
  return resolveForGroups(input.device.id, groupsOf(input.device, input.groups), input);
}

/** resolveDesiredState for many devices, with membership computed once for all of them. */
export function resolveFleet(
  devices: readonly LabeledDevice[],
  groups: readonly Group[],
  sources: DesiredSources,
): Map<string, DesiredState> {
  const memberships = membership(devices, groups);
  const result = new Map<string, DesiredState>();
  for (const [device, memberOf] of memberships) {
    result.set(device, resolveForGroups(device, memberOf, sources));
  }
  return result;
}

interface Claim extends AssignmentClaim {
  readonly spec: ServiceSpec;
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** memberOf is ranked (highest priority first, then name), as groupsOf and membership give it. */
function resolveForGroups(
  device: string,
  memberOf: readonly Group[],
  sources: DesiredSources,
): DesiredState {
  const claimsByService = new Map<string, Claim[]>();
  for (const group of memberOf) {
    for (const [service, revision] of sources.assignments.get(group.name) ?? []) {
      if (revision.spec.name !== service) {
        throw new Error(
          `assignments.${group.name}.${service}: revision ${revision.number} is of service ${revision.spec.name}`,
        );
      }
      const claim = {
        group: group.name,
        priority: group.priority,
        revision: revision.number,
        spec: revision.spec,
      };
      const claims = claimsByService.get(service);
      if (claims) claims.push(claim);
      else claimsByService.set(service, [claim]);
    }
  }

  const services: ServiceSpec[] = [];
  const resolutions: ServiceResolution[] = [];
  const conflicts: ServiceConflict[] = [];
  for (const service of [...claimsByService.keys()].sort(byText)) {
    const claims = claimsByService.get(service)!;
    const priority = claims[0]!.priority;
    const winners = claims.filter((claim) => claim.priority === priority);
    const outranked = claims.filter((claim) => claim.priority !== priority).map(withoutSpec);
    if (new Set(winners.map((claim) => claim.revision)).size > 1) {
      conflicts.push(revisionConflict(service, priority, winners.map(withoutSpec)));
      continue;
    }
    const { revision, spec } = winners[0]!;
    const choice = chooseImage(device, spec, memberOf, sources.pins, sources.rollouts);
    if (choice.kind === 'pin conflict') {
      conflicts.push(pinConflict(service, choice.priority, choice.claims));
      continue;
    }
    const assignedBy = winners.map((claim) => claim.group);
    services.push(choice.spec);
    resolutions.push({
      service,
      revision,
      priority,
      assignedBy,
      outranked,
      image: choice.spec.image,
      rule: choice.rule,
      pinGroups: choice.pinGroups,
      pinned: choice.rule === 'device pin' || choice.rule === 'group pin',
      autoUpdate: choice.spec.autoUpdate,
      summary: `revision ${revision} from ${assignedBy.join(', ')} (priority ${priority}); ${imageSummary(choice.rule, choice.pinGroups)}`,
    });
  }
  return { device, services, resolutions, conflicts };
}

function withoutSpec({ group, priority, revision }: Claim): AssignmentClaim {
  return { group, priority, revision };
}

function imageSummary(rule: ImageRule, pinGroups: readonly string[]): string {
  switch (rule) {
    case 'device pin':
      return 'image pinned on the device, auto-update off';
    case 'group pin':
      return `image pinned by group ${pinGroups.join(', ')}, auto-update off`;
    case 'rollout':
      return 'image from an active rollout';
    case 'revision':
      return 'image from the revision';
  }
}

function revisionConflict(
  service: string,
  priority: number,
  claims: AssignmentClaim[],
): ServiceConflict {
  const list = claims.map((claim) => `${claim.group} (revision ${claim.revision})`).join(', ');
  const message = `${service}: groups of priority ${priority} assign different revisions: ${list}`;
  return { service, kind: 'revision', priority, claims, message };
}

function pinConflict(service: string, priority: number, claims: PinClaim[]): ServiceConflict {
  const list = claims.map((claim) => `${claim.group} (${claim.image})`).join(', ');
  const message = `${service}: groups of priority ${priority} pin different images: ${list}`;
  return { service, kind: 'pin', priority, claims, message };
}
