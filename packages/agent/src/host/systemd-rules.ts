// systemd rules the in-memory host follows: which unit a file is, restarts, the start limit.
import type { UnitFile } from '@podfleet/shared';
import { unitNameOf } from './unit-definition.js';

/** Restart= decides from the result of the run whether systemd restarts it (systemd.service(5)). */
export function shouldRestart(policy: string, result: string): boolean {
  const unclean = ['signal', 'core-dump', 'timeout', 'watchdog'];
  if (policy === 'always') return true;
  if (policy === 'on-failure') return result === 'exit-code' || unclean.includes(result);
  if (policy === 'on-abnormal') return unclean.includes(result);
  return false;
}

/** The unit each file defines; a file in the systemd directory shadows Quadlet's generated one. */
export function unitSources(files: UnitFile[]): Map<string, UnitFile> {
  const sources = new Map<string, UnitFile>();
  for (const file of files) if (file.kind === 'quadlet') sources.set(unitNameOf(file), file);
  // /etc/systemd/system comes before /run/systemd/generator in systemd's unit search path.
  for (const file of files) if (file.kind === 'systemd') sources.set(file.name, file);
  return sources;
}

/** A start rate-limit window: StartLimitIntervalSec= from the first start in it. */
export interface StartLimit {
  begin: number;
  count: number;
}

/**
 * Counts a start against StartLimitBurst= the way systemd's ratelimit_below() does: a fixed window
 * that opens at the first start after the previous one closed. Returns the new window and whether
 * the start is allowed.
 */
export function countStart(
  limit: StartLimit | undefined,
  now: number,
  intervalMs: number,
  burst: number,
): { limit: StartLimit; allowed: boolean } {
  const open = !limit || now - limit.begin > intervalMs ? { begin: now, count: 0 } : { ...limit };
  open.count++;
  return { limit: open, allowed: open.count <= burst };
}
