import type { RolloutSpec, RolloutState } from '@podfleet/shared';
import type { DeviceRolloutState } from './progress.js';

export interface RolloutDeviceStatus {
  id: string;
  state: DeviceRolloutState;
  from: string;
  to: string;
  reason?: string;
  online: boolean;
}

export interface RolloutBatchStatus {
  index: number;
  kind: 'canary' | 'batch';
  state: 'pending' | 'running' | 'done';
  counts: Record<DeviceRolloutState | 'offline', number>;
  devices: RolloutDeviceStatus[];
}

/** Everything an operator sees about a rollout: GET /v1/rollouts/:id, the stream, `rollout watch`. */
export interface RolloutStatus {
  id: string;
  service: string;
  targetImage: string;
  state: RolloutState;
  reason?: string;
  spec: RolloutSpec;
  currentBatch: number;
  awaitingApproval: boolean;
  createdBy: string;
  createdAt: string;
  finishedAt?: string;
  counts: Record<DeviceRolloutState | 'offline' | 'total', number>;
  batches: RolloutBatchStatus[];
  excluded: { id: string; reason: string }[];
}

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
    offline: 0,
  };
}
