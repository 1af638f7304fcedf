import type { DeviceFailure, RolloutSpec, RolloutState } from '@podfleet/shared';
import type { ComplianceState } from '../compliance/states.js';
import type { DeviceRolloutState } from './progress.js';

export interface RolloutDeviceStatus {
  id: string;
  batch: number;
  state: DeviceRolloutState;
  from: string;
  to: string;
  reason?: string;
  online: boolean;
  /** Why the policy holds it back now. */
  hold?: string;
  failure?: DeviceFailure;
  /** A failure an operator resumed over. */
  accepted?: boolean;
  /** The device's compliance now, in the paged device listing (decision 012). */
  compliance?: ComplianceState;
}

export interface RolloutBatchStatus {
  index: number;
  kind: 'canary' | 'batch';
  state: 'pending' | 'running' | 'done';
  /** Devices in the batch. */
  total: number;
  counts: Record<DeviceRolloutState | 'offline', number>;
}

/**
 * Everything an operator sees about a rollout at a glance: GET /v1/rollouts/:id, the stream,
 * `rollout watch`. Its size does not grow with the fleet: counts per batch, and only the first
 * failed devices; every device is listed, paged, by GET /v1/rollouts/:id/devices.
 */
export interface RolloutStatus {
  id: string;
  service: string;
  targetImage: string;
  state: RolloutState;
  reason?: string;
  spec: RolloutSpec;
  currentBatch: number;
  awaitingApproval: boolean;
  /** Why devices are held back, one line per reason with how many. */
  waiting: string[];
  approvedBatches: number[];
  createdBy: string;
  createdAt: string;
  finishedAt?: string;
  counts: Record<DeviceRolloutState | 'offline' | 'total', number>;
  batches: RolloutBatchStatus[];
  /** Failed devices by batch and id, at most FAILURES_SHOWN; counts.failed says how many in all. */
  failures: RolloutDeviceStatus[];
  excluded: { id: string; reason: string }[];
}

export const FAILURES_SHOWN = 100;

export const FINISHED: readonly RolloutState[] = ['succeeded', 'failed', 'aborted', 'rolled_back'];

export function emptyCounts(): Record<DeviceRolloutState | 'offline', number> {
  return {
    pending: 0,
    updating: 0,
    succeeded: 0,
    failed: 0,
    skipped: 0,
    reverting: 0,
    reverted: 0,
    deferred: 0,
    offline: 0,
  };
}
