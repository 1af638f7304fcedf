import type { DeviceRolloutState } from '../progress.js';

/**
 * A device's part in a rollout as the policy sees it: the stored state plus `deferred` (offline
 * when its turn came under `offlineDevices: defer`; outside the batch count, updated on return).
 */
export type PolicyDeviceState = DeviceRolloutState | 'deferred';

export interface PolicyDevice {
  id: string;
  /** Its batch index as planned (`rollout plan` shows the same numbers). */
  batch: number;
  state: PolicyDeviceState;
  online: boolean;
  labels: Readonly<Record<string, string>>;
  /** When its manifest was pointed at the new image (epoch ms); the rate counts these. */
  switchedAt?: number;
}

/** States in which the rollout has disrupted a device: it counts against maxUnavailable. */
export function isDisrupted(state: PolicyDeviceState): boolean {
  return state === 'updating' || state === 'failed' || state === 'reverting';
}
