import { z } from 'zod';
import type { FailureReason, ServiceHealth } from '@podfleet/shared';
import { failureOf } from '../rollouts/observations.js';

import { COMPLIANCE_STATES } from './states.js';

export { COMPLIANCE_STATES } from './states.js';
export const ComplianceState = z.enum(COMPLIANCE_STATES);
export type ComplianceState = z.infer<typeof ComplianceState>;

/** Why a service is failed: the agent's structured failure, or its health from the report. */
export interface ComplianceFailure {
  reason: FailureReason;
  detail: string;
  unit?: string;
  journal?: readonly string[];
}

export interface ServiceCompliance {
  service: string;
  state: ComplianceState;
  /** The image the manifest names; null for a service the device runs but was not asked to. */
  desired: string | null;
  /** The image reference the device runs it under; null when it reports none. */
  running: string | null;
  /** The local image id the container runs (sha256), when the device says. */
  imageId?: string;
  failure?: ComplianceFailure;
}

export interface DeviceCompliance {
  state: ComplianceState;
  services: ServiceCompliance[];
}

/** A service as the state report carries it, only the fields compliance reads. */
export interface ReportedService {
  name: string;
  image: string;
  imageId?: string;
  ready: boolean;
  health?: ServiceHealth;
  reason?: string;
  journal?: readonly string[];
  rejected?: { image: string };
}

export interface ComplianceInput {
  online: boolean;
  /** The manifest published to the device: its generation and each service's image. */
  desired: { generation: number; services: readonly { name: string; image: string }[] } | null;
  /** The last state report. */
  reported: { generation: number; services: readonly ReportedService[] } | null;
  /**
   * The device's apply and rollback events for the desired generation or a later one, oldest
   * first, as stored (payloads).
   */
  events: readonly Record<string, unknown>[];
}

/**
 * A device's compliance per service and overall, from the desired manifest against what the
 * device reports: a service is in-sync only when the device applied the manifest, runs its
 * service under exactly the image reference the manifest names, and says it is ready. An applied generation alone proves nothing: an agent that failed an apply
 * and rolled back reports the generation with the previous image.
 */
export function computeCompliance(input: ComplianceInput): DeviceCompliance {
  const { desired, reported } = input;
  if (!input.online) return uniform(input, 'offline');
  if (!desired || !reported) return uniform(input, 'unknown');
  const applied = reported.generation >= desired.generation;
  const services = desired.services.map((spec) =>
    serviceCompliance(
      spec,
      reported.services.find((s) => s.name === spec.name),
      applied,
      input.events,
    ),
  );
  for (const extra of reported.services) {
    if (desired.services.some((s) => s.name === extra.name)) continue;
    // The agent removes what the manifest no longer names once it applied it.
    services.push({
      service: extra.name,
      state: applied ? 'drifted' : 'updating',
      desired: null,
      running: extra.image,
      ...(extra.imageId === undefined ? {} : { imageId: extra.imageId }),
    });
  }
  return { state: worstOf(services.map((s) => s.state)), services };
}

function serviceCompliance(
  spec: { name: string; image: string },
  seen: ReportedService | undefined,
  applied: boolean,
  events: readonly Record<string, unknown>[],
): ServiceCompliance {
  const base = {
    service: spec.name,
    desired: spec.image,
    running: seen?.image ?? null,
    ...(seen?.imageId === undefined ? {} : { imageId: seen.imageId }),
  };
  const runsDesired = seen !== undefined && seen.image === spec.image;
  // An auto-update rollback keeps the reference (a tag) and runs the digest it had before.
  const rejectedDesired = seen?.rejected?.image === spec.image;
  // `ready` already means the unit active and its container running (the agent's judgeService);
  // agents before 0.2 send neither health nor, always, an image id.
  if (applied && runsDesired && !rejectedDesired && seen.ready) {
    return { ...base, state: 'in-sync' };
  }
  const failure = lastApplyFailure(events, spec.name);
  if (failure) return { ...base, state: 'failed', failure };
  if (rejectedDesired || rolledBack(events, spec.name)) return { ...base, state: 'rolled-back' };
  if (!applied) return { ...base, state: 'updating' };
  if (!seen || !runsDesired) return { ...base, state: 'drifted' };
  return healthState(base, seen);
}

/** A service on the desired image and generation that is not ready: what its health says. */
function healthState(
  base: Omit<ServiceCompliance, 'state'>,
  seen: ReportedService,
): ServiceCompliance {
  const health = seen.health ?? (seen.imageId === undefined ? 'stopped' : 'starting');
  const detail = seen.reason ?? health;
  const withJournal = seen.journal?.length ? { journal: seen.journal } : {};
  switch (health) {
    case 'starting':
    case 'ready': // health ready, `ready` false: a report between two looks
      return { ...base, state: 'updating' };
    case 'crash-looping':
    case 'failed':
      return {
        ...base,
        state: 'failed',
        failure: { reason: 'crashed-after-start', detail, ...withJournal },
      };
    case 'unhealthy':
      return { ...base, state: 'failed', failure: { reason: 'unhealthy', detail, ...withJournal } };
    case 'stopped':
    case 'drifted':
      return { ...base, state: 'drifted' };
  }
}

/** The failure of the last apply event when it failed or was rejected and concerned `service`. */
function lastApplyFailure(
  events: readonly Record<string, unknown>[],
  service: string,
): ComplianceFailure | undefined {
  const last = events.findLast((event) => event.type === 'apply');
  if (!last) return undefined;
  const found = failureOf(last, service);
  if (!found) return undefined;
  const failure: ComplianceFailure = { reason: found.reason, detail: found.detail ?? found.reason };
  if (found.unit !== undefined) failure.unit = found.unit;
  if (found.journal !== undefined) failure.journal = found.journal;
  return failure;
}

function rolledBack(events: readonly Record<string, unknown>[], service: string): boolean {
  return events.some((event) => event.type === 'rollback' && event.service === service);
}

function uniform(input: ComplianceInput, state: ComplianceState): DeviceCompliance {
  const services = (input.desired?.services ?? []).map((spec) => {
    const seen = input.reported?.services.find((s) => s.name === spec.name);
    return {
      service: spec.name,
      state,
      desired: spec.image,
      running: seen?.image ?? null,
      ...(seen?.imageId === undefined ? {} : { imageId: seen.imageId }),
    };
  });
  return { state, services };
}

/** The first of `states` in COMPLIANCE_STATES' order; in-sync when there is none. */
export function worstOf(states: readonly ComplianceState[]): ComplianceState {
  let worst = COMPLIANCE_STATES.length - 1;
  for (const state of states) worst = Math.min(worst, COMPLIANCE_STATES.indexOf(state));
  return COMPLIANCE_STATES[worst]!;
}
