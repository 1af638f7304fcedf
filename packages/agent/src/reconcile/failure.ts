import type { DeviceFailure, FailureReason } from '@podfleet/shared';
import type { HostDriver } from '../host/host-driver.js';

/** `journalctl -n`: enough to show why a unit failed, small enough for one MQTT event. */
export const FAILURE_JOURNAL_LINES = 20;
/** One runaway log line must not make the event too big for the broker. */
const MAX_LINE_LENGTH = 500;

/** Why a service's change failed: the free text events already carry, and the policy's reason. */
export interface FailureCause {
  reason: FailureReason;
  detail: string;
  /** The unit that failed, or the service's main unit when none did (a pull). */
  unit: string;
}

/**
 * The failure with the unit's last journald lines. Read it before a rollback restarts the previous
 * version, so that the lines are the failed run's. A journal that cannot be read leaves the lines
 * out: the evidence must not stop the rollback.
 */
export async function failureWithJournal(
  driver: HostDriver,
  cause: FailureCause,
): Promise<DeviceFailure> {
  let journal: string[] = [];
  try {
    journal = (await driver.journal(cause.unit, FAILURE_JOURNAL_LINES))
      .slice(-FAILURE_JOURNAL_LINES)
      .map((line) =>
        line.length > MAX_LINE_LENGTH ? `${line.slice(0, MAX_LINE_LENGTH - 3)}...` : line,
      );
  } catch {
    // journalctl missing or refused: report the failure without its lines.
  }
  return { ...cause, journal };
}

/** A failure no unit's journal explains (a pull, a rejected manifest). */
export function failureWithoutJournal(cause: FailureCause | Omit<FailureCause, 'unit'>) {
  return { ...cause, journal: [] } satisfies DeviceFailure;
}
