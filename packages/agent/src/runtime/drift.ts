import type { DeviceEvent } from '@podfleet/shared';
import { isRunning } from '../reconcile/planner.js';
import { belongsTo, type HostSnapshot } from '../reconcile/snapshot.js';
import { eventHeader, type EventSource } from '../reconcile/events.js';
import type { ServiceOutcome } from '../reconcile/executor.js';
import type { AppliedRecord } from '../state/applied-record.js';

/** How one service differs from what was applied: a unit file edited or removed, a unit down. */
export interface DriftFinding {
  service: string;
  expected: string;
  observed: string;
}

/** Compares the host with the applied record. Pure: the agent reads the snapshot. */
export function findDrift(
  snapshot: HostSnapshot,
  record: AppliedRecord | undefined,
): DriftFinding[] {
  const findings: DriftFinding[] = [];
  for (const { spec, files } of record?.services ?? []) {
    const name = spec.name;
    const observed: string[] = [];
    for (const file of files) {
      const onHost = snapshot.files.find((f) => f.kind === file.kind && f.name === file.name);
      if (!onHost) observed.push(`${file.name} missing`);
      else if (onHost.contents !== file.contents) observed.push(`${file.name} changed on disk`);
    }
    for (const extra of snapshot.files.filter((f) => belongsTo(f, name))) {
      if (!files.some((f) => f.kind === extra.kind && f.name === extra.name)) {
        observed.push(`${extra.name} not podfleet's`);
      }
    }
    // A socket-activated service runs on demand: its socket is what must be up.
    const main = spec.socket ? `${name}.socket` : `${name}.service`;
    const status = snapshot.units[main];
    if (!status || !isRunning(status)) {
      observed.push(`${main} ${status?.active ?? 'inactive'}/${status?.sub ?? 'dead'}`);
    }
    if (observed.length > 0) {
      findings.push({
        service: name,
        expected: `${main} running the units of generation ${record!.generation}`,
        observed: observed.join(', '),
      });
    }
  }
  return findings;
}

const FIXED = new Set<ServiceOutcome['action']>(['repaired', 'installed', 'updated']);

/**
 * One drift event per service the repair pass touched: `reconciled` when it passed its gate
 * again, `reported` when it could not be repaired.
 */
export function driftEvents(
  findings: DriftFinding[],
  outcomes: ServiceOutcome[],
  source: EventSource,
): DeviceEvent[] {
  const events: DeviceEvent[] = [];
  for (const outcome of outcomes) {
    const finding = findings.find((f) => f.service === outcome.name);
    if (outcome.action === 'removed' || (!finding && outcome.action !== 'repaired')) continue;
    events.push({
      ...eventHeader(source),
      type: 'drift',
      service: outcome.name,
      expected: finding?.expected ?? `${outcome.name} as applied`,
      observed: finding?.observed ?? 'differs from the applied units',
      action: FIXED.has(outcome.action) ? 'reconciled' : 'reported',
    });
  }
  return events;
}
