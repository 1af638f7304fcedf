import type { AgentCommand, CommandResponse, CommandResult } from '@podfleet/shared';
import type { HostDriver } from '../host/host-driver.js';
import type { StateStore } from '../state/state-store.js';

/** Bytes of journal a `logs` answer carries at most: an MQTT message, not a log shipper. */
export const MAX_LOG_BYTES = 64 * 1024;
const MAX_LINE_BYTES = 4096;

/** What the agent offers the commands; host-changing work goes through its serial lane. */
export interface CommandTarget {
  driver: HostDriver;
  store: StateStore;
  autoUpdate(
    dryRun: boolean,
    retry: boolean,
  ): Promise<Extract<CommandResult, { type: 'auto-update' }>>;
  restart(service: string): Promise<{ ready: boolean; reason?: string }>;
}

/**
 * Runs one validated request and answers it. Only the controller can publish on a device's cmd
 * topic (broker ACL); still, a service this device does not manage is refused, so a command can
 * never reach a unit podfleet did not write.
 */
export async function answerCommand(
  command: AgentCommand,
  target: CommandTarget,
): Promise<CommandResponse> {
  const { id } = command;
  try {
    if (command.type === 'auto-update') {
      return { id, ok: true, result: await target.autoUpdate(command.dryRun, command.retry) };
    }
    const managed = (await target.store.loadApplied())?.services.some(
      (s) => s.spec.name === command.service,
    );
    if (!managed) {
      return { id, ok: false, error: `service ${command.service}: not managed on this device` };
    }
    if (command.type === 'logs') {
      const lines = await target.driver.journal(`${command.service}.service`, command.lines);
      return {
        id,
        ok: true,
        result: { type: 'logs', service: command.service, ...tailJournal(lines) },
      };
    }
    const outcome = await target.restart(command.service);
    return { id, ok: true, result: { type: 'restart', service: command.service, ...outcome } };
  } catch (error) {
    return { id, ok: false, error: `${command.type}: ${(error as Error).message}` };
  }
}

/** The newest lines that fit MAX_LOG_BYTES, each cut to MAX_LINE_BYTES. */
export function tailJournal(lines: string[]): { lines: string[]; truncated: boolean } {
  const kept: string[] = [];
  let bytes = 0;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = cut(lines[i]!);
    bytes += Buffer.byteLength(line) + 1;
    if (bytes > MAX_LOG_BYTES) return { lines: kept.reverse(), truncated: true };
    kept.push(line);
  }
  return { lines: kept.reverse(), truncated: false };
}

function cut(line: string): string {
  if (Buffer.byteLength(line) <= MAX_LINE_BYTES) return line;
  return `${Buffer.from(line).subarray(0, MAX_LINE_BYTES).toString('utf8')}…`;
}
