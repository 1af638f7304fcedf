import { unitStyleFor, type DeviceManifest, type UnitStyle } from '@podfleet/shared';
import { executePlan, type ApplyOutcome, type ExecutorDeps } from './executor.js';
import { planSteps } from './planner.js';
import { readHostSnapshot } from './snapshot.js';

export interface ReconcileDeps extends ExecutorDeps {
  /** The unit style; read from the host's Podman version when absent. */
  style?: UnitStyle;
  /** Where podman lives on the device, for service-style units. */
  podman?: string;
}

/**
 * One pass of the loop: read the host, plan against the applied record, execute. Safe to call
 * again at any time, after a crash too: it looks at state, so it finishes what was interrupted.
 */
export async function reconcile(
  desired: DeviceManifest,
  deps: ReconcileDeps,
): Promise<ApplyOutcome> {
  const { driver, store } = deps;
  const applied = await store.loadApplied();
  const style = deps.style ?? unitStyleFor(await driver.podmanVersion());
  const current = await readHostSnapshot(driver, desired, applied);
  const steps = planSteps(current, applied, desired, {
    style,
    scope: driver.scope,
    ...(deps.podman ? { podman: deps.podman } : {}),
  });
  return executePlan({ steps, desired, applied, style }, deps);
}
