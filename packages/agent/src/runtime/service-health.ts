import type { ServiceHealth, ServiceSpec } from '@podfleet/shared';
import type { UnitStatus } from '../host/host-driver.js';

export interface HealthVerdict {
  health: ServiceHealth;
  /** Why it is not ready, in one line; absent when ready. */
  reason?: string;
}

export interface ServiceLook {
  spec: ServiceSpec;
  service: UnitStatus;
  /** The socket unit, for a socket-activated service. */
  socket?: UnitStatus;
  /** The units on disk are the version that passed the gate. */
  gated: boolean;
  /**
   * NRestarts at the agent's last look at this service; undefined when it has not looked since it
   * started (a count above 0 then cannot be told from an old restart, so it is not trusted yet).
   */
  lastRestarts: number | undefined;
  /** Now, on the device's clock (systemd's timestamps are on it too). */
  now: number;
}

/**
 * How long a run that systemd started by itself (Restart=) must stay up before the service counts
 * as ready again: a crash loop whose cycle is shorter than this is never ready between crashes.
 */
export const RESTART_QUIET_MS = 60_000;

/**
 * What a service is doing, from systemd's and Podman's view of it now and its restart count at
 * the last look. Pure. Ready only while the unit is active and running, its container running
 * (and healthy where it has a check), and no restart happened since the last look: a unit under
 * Restart= that crashes every few seconds is active most of each cycle, so one look at
 * ActiveState cannot tell a crash loop from a running service, but NRestarts can: a count above
 * 0 means the current run is an automatic restart (a manual start sets it to 0), and one younger
 * than RESTART_QUIET_MS is not trusted yet.
 */
export function judgeService(look: ServiceLook): HealthVerdict {
  const verdict = judgeUnits(look);
  if (verdict.health === 'ready' && !look.gated) {
    return {
      health: 'drifted',
      reason: 'its units on disk are not the version that passed the gate',
    };
  }
  return verdict;
}

function judgeUnits({ spec, service, socket, lastRestarts, now }: ServiceLook): HealthVerdict {
  const { unit, restarts } = service;
  if (service.active === 'failed') {
    return {
      health: 'failed',
      reason: `${unit} failed (result: ${service.result}), NRestarts ${restarts}`,
    };
  }
  if (service.active === 'activating' && service.sub === 'auto-restart') {
    return {
      health: 'crash-looping',
      reason: `${unit} exited (result: ${service.result}) and waits to be restarted, NRestarts ${restarts}`,
    };
  }
  if (lastRestarts !== undefined && restarts > lastRestarts) {
    return {
      health: 'crash-looping',
      reason: `${unit} restarted ${restarts - lastRestarts} time(s) since the last look, NRestarts ${restarts}`,
    };
  }
  if (socket) {
    if (socket.active === 'failed')
      return { health: 'failed', reason: `${socket.unit} failed (result: ${socket.result})` };
    if (socket.active !== 'active')
      return { health: 'stopped', reason: `${socket.unit} ${socket.active}/${socket.sub}` };
    // Socket activation: no container until the first connection, and that is what it should be.
    if (service.active === 'inactive') return { health: 'ready' };
  }
  if (service.active === 'activating')
    return { health: 'starting', reason: `${unit} activating/${service.sub}` };
  if (service.active !== 'active' || service.sub !== 'running') {
    return { health: 'stopped', reason: `${unit} ${service.active}/${service.sub}` };
  }
  if (!service.container) return { health: 'starting', reason: `${unit} runs no container yet` };
  const runFor = now - Date.parse(service.activeSince ?? '');
  if (restarts > 0 && !(runFor >= RESTART_QUIET_MS)) {
    const seconds = Number.isFinite(runFor) ? `${Math.round(runFor / 1000)}s ago` : 'lately';
    return {
      health: 'crash-looping',
      reason: `${unit} restarted by systemd ${seconds}, NRestarts ${restarts}`,
    };
  }
  const checked = spec.health !== undefined ? service.container.health : 'none';
  if (checked === 'unhealthy')
    return { health: 'unhealthy', reason: `${unit} container unhealthy` };
  if (checked === 'starting')
    return { health: 'starting', reason: `${unit} health check not passed yet` };
  return { health: 'ready' };
}

/** A service whose current version is broken over time, which a rollback may cure. */
export function isCrashLoop(health: ServiceHealth): boolean {
  return health === 'crash-looping' || health === 'failed';
}
