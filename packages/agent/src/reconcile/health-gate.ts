import type { FailureReason } from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type { HostDriver, UnitStatus } from '../host/host-driver.js';

export interface Gate {
  /** Units that must be active: a service (Type=notify: active means READY=1 arrived) or a socket. */
  units: string[];
  /** Seconds to become active. */
  timeout: number;
  /** Seconds to then stay active with no restart and no new main process. */
  settle: number;
  /** The container has a healthcheck: it must be healthy by the end and never unhealthy. */
  health: boolean;
}

/** How a gate fails, in the rollout policy's terms. */
export type GateFailure = Extract<
  FailureReason,
  'start-timeout' | 'unhealthy' | 'crashed-after-start'
>;

export type GateResult =
  | { ok: true }
  | {
      ok: false;
      reason: string;
      failure: GateFailure;
      /** The unit that failed it. */
      unit: string;
    };

/**
 * The agent's health gate. Podman's own check (auto-update --rollback, `systemctl start` on a
 * Type=notify unit) passes the moment READY=1 arrives, and with --sdnotify=conmon that is as soon
 * as conmon runs the container, even if the app exits right after (device-lab.md). So the gate
 * also watches the unit for `settle` seconds: a crash, an automatic restart or a new main PID in
 * that time, or an unhealthy container, fails it.
 */
export async function awaitReady(
  driver: HostDriver,
  clock: Clock,
  gate: Gate,
  pollMs = 500,
): Promise<GateResult> {
  const started = clock.now();
  const deadline = started + gate.timeout * 1000;
  let statuses = await read(driver, gate.units);
  const baseline = new Map(statuses.map((s) => [s.unit, s.restarts]));

  // Phase 1: every unit active within the timeout. A unit that broke after it was active in
  // this gate (between two polls) crashed after its start; one that never was did not start.
  for (;;) {
    for (const status of statuses) {
      const problem = broken(status, baseline);
      if (!problem) continue;
      const wasActive = activeSince(status) >= started;
      return fail(status, problem, wasActive ? 'crashed-after-start' : 'start-timeout');
    }
    if (statuses.every((s) => s.active === 'active')) break;
    if (clock.now() >= deadline) {
      const late = statuses.find((s) => s.active !== 'active')!;
      const reason = `${late.unit} not active within ${gate.timeout}s (${late.active}/${late.sub})`;
      return fail(late, reason, 'start-timeout');
    }
    await clock.sleep(Math.min(pollMs, deadline - clock.now()));
    statuses = await read(driver, gate.units);
  }

  // Phase 2: still the same run, active (and not unhealthy), for the settle period; a healthcheck
  // then has until the later of the timeout and the settle's end to report healthy.
  const pids = new Map(statuses.map((s) => [s.unit, s.mainPid]));
  const settled = clock.now() + gate.settle * 1000;
  const healthBy = Math.max(deadline, settled);
  for (;;) {
    for (const status of statuses) {
      const problem = broken(status, baseline) ?? unsettled(status, pids);
      if (problem) return fail(status, problem, 'crashed-after-start');
      if (gate.health && healthOf(status) === 'unhealthy') {
        return fail(status, `${status.unit} container unhealthy`, 'unhealthy');
      }
    }
    const now = clock.now();
    const unhealthy = gate.health ? statuses.find((s) => healthOf(s) !== 'healthy') : undefined;
    if (now >= settled && !unhealthy) return { ok: true };
    if (now >= healthBy && unhealthy) {
      // Never unhealthy (that fails at once, above): the check has not passed yet.
      const reason = `${unhealthy.unit} container not healthy (${healthOf(unhealthy)})`;
      return fail(unhealthy, reason, 'start-timeout');
    }
    const until = now < settled ? settled : healthBy;
    await clock.sleep(Math.min(pollMs, until - now));
    statuses = await read(driver, gate.units);
  }
}

function read(driver: HostDriver, units: string[]): Promise<UnitStatus[]> {
  return Promise.all(units.map((unit) => driver.unitStatus(unit)));
}

function fail(status: UnitStatus, reason: string, failure: GateFailure): GateResult {
  return { ok: false, reason, failure, unit: status.unit };
}

/** When the unit last entered active, on the device's clock; -Infinity if never. */
function activeSince(status: UnitStatus): number {
  return status.activeSince === undefined ? -Infinity : Date.parse(status.activeSince);
}

/** Failures that end the gate at once, in either phase. */
function broken(status: UnitStatus, baseline: Map<string, number>): string | undefined {
  const { unit } = status;
  if (status.load !== 'loaded') return `${unit} is not loaded (${status.load})`;
  if (status.active === 'failed') return `${unit} failed (result: ${status.result})`;
  if (status.active === 'activating' && status.sub === 'auto-restart') {
    return `${unit} exited (result: ${status.result}) and waits to be restarted`;
  }
  const restarts = status.restarts - (baseline.get(unit) ?? 0);
  if (restarts > 0) return `${unit} restarted ${restarts} time(s) (result: ${status.result})`;
  return undefined;
}

function unsettled(status: UnitStatus, pids: Map<string, number>): string | undefined {
  const { unit } = status;
  if (status.active !== 'active')
    return `${unit} left active during settle (${status.active}/${status.sub})`;
  if (status.mainPid !== pids.get(unit)) return `${unit} main process changed during settle`;
  return undefined;
}

/** Only service units run a container; a socket has no health of its own. */
function healthOf(status: UnitStatus): string {
  if (!status.unit.endsWith('.service')) return 'healthy';
  return status.container?.health ?? 'none';
}
