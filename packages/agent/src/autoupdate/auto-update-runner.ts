import type { DeviceEvent, RejectedImage } from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type { AutoUpdateRow, HostDriver } from '../host/host-driver.js';
import { eventHeader, imageWithId, type EventSource } from '../reconcile/events.js';
import { failureWithJournal } from '../reconcile/failure.js';
import { awaitReady } from '../reconcile/health-gate.js';
import { isRunning } from '../reconcile/planner.js';
import { restoreService } from '../reconcile/rollback.js';
import { serviceFileNames } from '../reconcile/snapshot.js';
import type { AppliedService, ServiceBackup } from '../state/applied-record.js';
import { recordGood, recordRejected } from '../state/service-record.js';
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
 * healthy), and one that fails is rolled back to the previous image id, whose digest the service
 * then rejects. Services pinned by digest carry no auto-update label, so Podman never touches them.
 *
 * A rejected image stays rejected: while the tag still serves it, the service's row says
 * `skipped` (`rejected <digest>`) and Podman must not run, since it would update every labelled
 * container with no way to leave one out; the agent then updates the other services itself, as
 * Podman does (pull or look up the tag, compare with the running image, restart). `retry`
 * forgets the rejections first.
 */
export async function runAutoUpdate(
  deps: AutoUpdateDeps,
  { dryRun, retry = false }: { dryRun: boolean; retry?: boolean },
): Promise<AutoUpdateReport> {
  const { driver, store } = deps;
  if (retry) await forgetRejections(store);
  const record = await store.loadApplied();
  const watched = (record?.services ?? []).filter((s) => s.spec.autoUpdate !== 'off');
  const skipped = await stillRejected(deps, watched);
  const updatable = watched.filter((s) => !skipped.some((k) => k.service === s));
  const backups = dryRun ? new Map<string, Backup>() : await backUp(deps, updatable);
  let rows: AutoUpdateRow[];
  try {
    // A dry run changes nothing, so Podman may look at every container; its row for a skipped
    // service gives way to the skip.
    rows =
      skipped.length === 0 || dryRun
        ? (await driver.autoUpdate({ dryRun, rollback: true })).filter(
            (row) => !skipped.some((k) => k.row.unit === row.unit),
          )
        : await updateEach(deps, updatable);
  } catch (error) {
    await dropCreated(store, [...backups.values()]);
    return finish(
      deps,
      dryRun,
      skipped.map((k) => k.row),
      [],
      (error as Error).message,
    );
  }
  const results: AutoUpdateRow[] = skipped.map((k) => k.row);
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

interface SkippedService {
  service: AppliedService;
  row: AutoUpdateRow;
}

/**
 * The watched services whose tag still serves the image they rejected (or whose tag could not be
 * read: they are left out of this run too, with the reason). Registry policy: a pull of
 * the tag (the rejected image's layers are still local, so only its manifest is fetched), then
 * the tag is pointed back at the running image; local policy: the tag as it is. A tag that moved
 * on to another image ends the rejection.
 */
async function stillRejected(
  deps: AutoUpdateDeps,
  watched: AppliedService[],
): Promise<SkippedService[]> {
  const { driver, store } = deps;
  const skipped: SkippedService[] = [];
  for (const service of watched) {
    const { spec, rejected } = service;
    if (!rejected || rejected.image !== spec.image) continue;
    const unit = `${spec.name}.service`;
    const running = (await driver.unitStatus(unit)).container;
    const row = (updated: AutoUpdateRow['updated'], reason: string): SkippedService => ({
      service,
      row: {
        unit,
        container: containerLabel(running?.id, spec.name),
        image: spec.image,
        policy: spec.autoUpdate,
        updated,
        reason,
      },
    });
    let candidate: string | undefined;
    try {
      candidate =
        spec.autoUpdate === 'registry'
          ? await driver.pullImage(spec.image)
          : await driver.imageId(spec.image);
      const back = running?.imageId ?? service.imageId;
      if (spec.autoUpdate === 'registry' && back && back !== candidate) {
        await driver.tagImage(back, spec.image);
      }
    } catch (error) {
      // Unknown whether the tag moved on: left alone this run, like Podman's own failed row.
      skipped.push(row('failed', (error as Error).message));
      continue;
    }
    if (candidate !== rejected.imageId) {
      await forgetRejections(store, spec.name);
      continue;
    }
    skipped.push(row('skipped', `rejected ${rejected.digest ?? rejected.imageId}`));
  }
  return skipped;
}

/**
 * What `podman auto-update` does, for the given services only: the tag's image (pulled for the
 * registry policy) against the image the container runs; a different one restarts the unit on
 * it. Rollback is the caller's gate. Only for a real run (a dry run asks Podman).
 */
async function updateEach(
  deps: AutoUpdateDeps,
  services: AppliedService[],
): Promise<AutoUpdateRow[]> {
  const { driver } = deps;
  const rows: AutoUpdateRow[] = [];
  for (const { spec } of services) {
    const unit = `${spec.name}.service`;
    const running = (await driver.unitStatus(unit)).container;
    if (!running) continue; // podman auto-update walks running containers only
    const row = (updated: AutoUpdateRow['updated'], reason?: string): AutoUpdateRow => ({
      unit,
      container: containerLabel(running.id, spec.name),
      image: spec.image,
      policy: spec.autoUpdate,
      updated,
      ...(reason !== undefined ? { reason } : {}),
    });
    try {
      const candidate =
        spec.autoUpdate === 'registry'
          ? await driver.pullImage(spec.image)
          : await driver.imageId(spec.image);
      if (candidate === undefined || candidate === running.imageId) rows.push(row('false'));
      else {
        await driver.restart(unit);
        rows.push(row('true'));
      }
    } catch (error) {
      rows.push(row('failed', (error as Error).message));
    }
  }
  return rows;
}

/** Podman's CONTAINER column: the short id and the name. */
function containerLabel(id: string | undefined, name: string): string {
  return id ? `${id.slice(0, 12)} (${name})` : name;
}

/** Forgets the rejected image of one service, or of all. */
async function forgetRejections(store: StateStore, name?: string): Promise<void> {
  const record = await store.loadApplied();
  if (!record) return;
  let changed = false;
  for (const service of record.services) {
    if ((name === undefined || service.spec.name === name) && service.rejected) {
      delete service.rejected;
      changed = true;
    }
  }
  if (changed) await store.saveApplied(record);
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
      spec: service.spec,
      origin: 'auto-update',
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
    await recordUpdate(store, spec.name, newId, saved);
    await store.dropBackup(spec.name);
    return { updated: 'true', events: [] };
  }
  // Before the rollback restarts the previous image: the journal is the failed run's.
  const failure = await failureWithJournal(driver, {
    reason: gate.failure,
    detail: gate.reason,
    unit: gate.unit,
  });
  // Rejected before the rollback: a power cut during it must not make the image new again.
  if (newId) {
    const digest = await driver.imageDigest(newId).catch(() => undefined);
    const rejected = { image: spec.image, imageId: newId, at: now(deps), reason: gate.reason };
    await reject(store, spec.name, digest ? { ...rejected, digest } : rejected);
  }
  const restore = await restoreService(driver, clock, saved, pollMs);
  await store.dropBackup(spec.name);
  const event: DeviceEvent = {
    ...eventHeader(deps),
    type: 'rollback',
    service: spec.name,
    generation,
    trigger: 'auto-update',
    fromImage: imageWithId(spec.image, newId),
    toImage: imageWithId(saved.image ?? spec.image, saved.imageId),
    reason:
      restore.restored || !restore.detail
        ? gate.reason
        : `${gate.reason}; not restored: ${restore.detail}`,
    restored: restore.restored,
    failure,
  };
  return { updated: restore.restored ? 'rolled back' : 'failed', events: [event] };
}

/**
 * The gated container's image id becomes the one a later apply's rollback returns to, and the
 * version it replaced the one a crash loop of it rolls back to. Saved before the backup is
 * dropped: a power cut in between leaves a finished change, never a lost one.
 */
async function recordUpdate(
  store: StateStore,
  name: string,
  imageId: string | undefined,
  replaced: ServiceBackup,
) {
  const record = await store.loadApplied();
  const service = record?.services.find((s) => s.spec.name === name);
  if (!record || !service || !imageId || service.imageId === imageId) return;
  recordGood(record, { spec: service.spec, files: service.files, imageId }, replaced);
  await store.saveApplied(record);
}

async function reject(store: StateStore, name: string, rejected: RejectedImage): Promise<void> {
  const record = await store.loadApplied();
  if (!record) return;
  recordRejected(record, name, rejected);
  await store.saveApplied(record);
}

function now(deps: AutoUpdateDeps): string {
  return new Date(deps.clock.now()).toISOString();
}

async function dropCreated(store: StateStore, backups: Backup[]): Promise<void> {
  for (const backup of backups) if (backup.created) await store.dropBackup(backup.saved.name);
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
