import type { EffectiveSettings } from './settings.js';
import { deviceWindow, formatInZone, type WindowOpenings } from './windows.js';

/**
 * What `rollout plan` says about when a batch can run, seen from `now`: the approval it waits
 * for, the bake before it, and when its devices' maintenance windows let the first and the last
 * of them start (in the window's own time zone). Later batches also wait for the ones before
 * them; this is what holds each batch on its own.
 */
export function batchForecast(
  index: number,
  devices: readonly Readonly<Record<string, string>>[],
  settings: EffectiveSettings,
  now: number,
): string[] {
  const lines: string[] = [];
  if (settings.approvalPoints.has(index - 1))
    lines.push(`waits for an operator's approval after batch ${index - 1}`);
  if (index > 0 && settings.bakeBetweenBatches > 0)
    lines.push(`starts ${settings.bakeBetweenBatches}s after batch ${index - 1} succeeded`);
  if (settings.windows.length === 0) return lines;
  let first: { at: number; zone: string } | undefined;
  let last: { at: number; zone: string } | undefined;
  let never = 0;
  const openings: WindowOpenings = new Map();
  for (const labels of devices) {
    const window = deviceWindow(settings.windows, labels, now, openings);
    if (!window.open && window.opensAt === undefined) {
      never++;
      continue;
    }
    const at = window.open ? now : window.opensAt!;
    const zone = window.open ? 'UTC' : window.window.timeZone;
    if (!first || at < first.at) first = { at, zone };
    if (!last || at > last.at) last = { at, zone };
  }
  const when = (point: { at: number; zone: string }) =>
    point.at === now ? 'now' : `at ${formatInZone(point.at, point.zone)}`;
  if (first && last) {
    lines.push(
      first.at === last.at
        ? `its devices' windows let them start ${when(first)}`
        : `its windows let the first device start ${when(first)}, the last ${when(last)}`,
    );
  }
  if (never > 0) lines.push(`${never} device${never === 1 ? '' : 's'}: no window ever opens`);
  return lines;
}
