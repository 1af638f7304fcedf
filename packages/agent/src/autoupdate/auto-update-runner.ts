import type { DeviceEvent } from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type { AutoUpdateRow, HostDriver } from '../host/host-driver.js';
import { eventHeader, type EventSource } from '../reconcile/events.js';
import { failureWithJournal } from '../reconcile/failure.js';
import { awaitReady } from '../reconcile/health-gate.js';
import { isRunning } from '../reconcile/planner.js';
import { restoreService } from '../reconcile/rollback.js';
import { serviceFileNames } from '../reconcile/snapshot.js';
import type { AppliedService, ServiceBackup } from '../state/applied-record.js';
import type { StateStore } from '../state/state-store.js';

export interface AutoUpdateDeps extends EventSource {
  driver: HostDriver;
  store: StateStore;
  clock: Clock;
  pollMs?: number;
  /** Overrides every service's ready.settle (seconds). */
  settle?: number;
}

export interface AutoUpdateReport {
  dryRun: boolean;
  /** Podman's rows, with `true` turned into `rolled back` or `failed` where the gate failed. */
  results: AutoUpdateRow[];
  reason?: string;
  /** Rollback events as they happened, then the auto-update event. */
  events: DeviceEvent[];
}

/**
 * `podman auto-update` with the agent's own gate behind it. Podman restarts a unit on a newer
 * image and calls it `true` once the restart job is done — with --sdnotify=conmon, as soon as the
 * container runs, even when the app exits right after (device-lab.md: the unit then crash-loops
 * and nothing runs). So every `true` row is gated like an apply (active, then settled and
 * healthy), and one that fails is rolled back to the previous image id. Services pinned by digest
 * carry no auto-update label, so Podman never touches them.
 */
export async function runAutoUpdate(
  deps: AutoUpdateDeps,
  { dryRun }: { dryRun: boolean },
): Promise<AutoUpdateReport> {
  const { driver, store } = deps;
  const record = await store.loadApplied();
  const watched = (record?.services ?? []).filter((s) => s.spec.autoUpdate !== 'off');
  const backups = dryRun ? new Map<string, Backup>() : await backUp(deps, watched);
  let rows: AutoUpdateRow[];
  try {
    rows = await driver.autoUpdate({ dryRun, rollback: true });
  } catch (error) {
    await dropCreated(store, [...backups.values()]);
    return finish(deps, dryRun, [], [], (error as Error).message);
  }
  const results: AutoUpdateRow[] = [];
  const events: DeviceEvent[] = [];
  for (const row of rows) {
    const backup = backups.get(row.unit);
    backups.delete(row.unit);
    if (row.updated !== 'true' || !backup) {
      if (backup) await dropCreated(store, [backup]);
      results.push(row);
      continue;
    }
    const gated = await gateUpdate(deps, row, backup, record?.generation ?? 0);
    results.push({ ...row, updated: gated.updated });
    events.push(...gated.events);
  }
  await dropCreated(store, [...backups.values()]);
  return finish(deps, dryRun, results, events);
}

interface Backup {
  service: AppliedService;
  saved: ServiceBackup;
  /** Made by this run (else left by an interrupted apply: the older known-good version). */
  created: boolean;
}

/**
 * Saves each watched service's files, image id and unit states before Podman touches it, in the
 * state directory like an apply's backup: if the agent dies mid-gate, the next repair pass rolls
 * back from it.
 */
async function backUp(deps: AutoUpdateDeps, watched: AppliedService[]) {
  const { driver, store } = deps;
  const backups = new Map<string, Backup>();
  for (const service of watched) {
    const name = service.spec.name;
    const unit = `${name}.service`;
    const left = await store.loadBackup(name);
    if (left) {
      backups.set(unit, { service, saved: left, created: false });
      continue;
    }
    const main = await driver.unitStatus(unit);
    if (!main.container) continue; // not running: podman auto-update skips it
    const socket = await driver.unitStatus(`${name}.socket`);
    const files = await Promise.all(
      serviceFileNames(name).map((f) => driver.readUnitFile(f.kind, f.name)),
    );
    const saved: ServiceBackup = {
      name,
      files: files.filter((file) => file !== undefined),
      image: service.spec.image,
      imageId: main.container.imageId,
      enabled: [socket, main].filter((s) => s.fileState === 'enabled').map((s) => s.unit),
      active: [socket, main].filter(isRunning).map((s) => s.unit),
      ready: service.spec.ready,
      health: service.spec.health !== undefined,
    };
    await store.saveBackup(saved);
    backups.set(unit, { service, saved, created: true });
  }
  return backups;
}

async function gateUpdate(
  deps: AutoUpdateDeps,
  row: AutoUpdateRow,
  { service, saved }: Backup,
  generation: number,
): Promise<{ updated: AutoUpdateRow['updated']; events: DeviceEvent[] }> {
  const { driver, clock, store, pollMs } = deps;
  const { spec } = service;
  const ready = { ...spec.ready, ...(deps.settle !== undefined ? { settle: deps.settle } : {}) };
  const gate = await awaitReady(
    driver,
    clock,
    { units: [row.unit], ...ready, health: spec.health !== undefined },
    pollMs,
  );
  const newId =
    (await driver.unitStatus(row.unit)).container?.imageId ?? (await driver.imageId(spec.image));
  if (gate.ok) {
    await store.dropBackup(spec.name);
    await recordImageId(store, spec.name, newId);
    return { updated: 'true', events: [] };
  }
  // Before the rollback restarts the previous image: the journal is the failed run's.
  const failure = await failureWithJournal(driver, {
    reason: gate.failure,
    detail: gate.reason,
    unit: gate.unit,
  });
  const restore = await restoreService(driver, clock, saved, pollMs);
  await store.dropBackup(spec.name);
  const event: DeviceEvent = {
    ...eventHeader(deps),
    type: 'rollback',
    service: spec.name,
    generation,
    trigger: 'auto-update',
    fromImage: withId(spec.image, newId),
    toImage: withId(saved.image ?? spec.image, saved.imageId),
    reason:
      restore.restored || !restore.detail
        ? gate.reason
        : `${gate.reason}; not restored: ${restore.detail}`,
    restored: restore.restored,
    failure,
  };
  return { updated: restore.restored ? 'rolled back' : 'failed', events: [event] };
}

/** The gated container's image id becomes the one a later apply's rollback returns to. */
async function recordImageId(store: StateStore, name: string, imageId: string | undefined) {
  const record = await store.loadApplied();
  const service = record?.services.find((s) => s.spec.name === name);
  if (!record || !service || !imageId || service.imageId === imageId) return;
  service.imageId = imageId;
  await store.saveApplied(record);
}

async function dropCreated(store: StateStore, backups: Backup[]): Promise<void> {
  for (const backup of backups) if (backup.created) await store.dropBackup(backup.saved.name);
}

/** An auto-update keeps the reference and changes the image: name both by their local id. */
function withId(image: string, imageId: string | undefined): string {
  return imageId ? `${image} (${imageId.slice(0, 12)})` : image;
}

function finish(
  deps: AutoUpdateDeps,
  dryRun: boolean,
  results: AutoUpdateRow[],
  events: DeviceEvent[],
  reason?: string,
): AutoUpdateReport {
  const event: DeviceEvent = {
    ...eventHeader(deps),
    type: 'auto-update',
    dryRun,
    results,
    ...(reason !== undefined ? { reason } : {}),
  };
  return {
    dryRun,
    results,
    ...(reason !== undefined ? { reason } : {}),
    events: [...events, event],
  };
}
