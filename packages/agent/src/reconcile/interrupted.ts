import type { DeviceEvent, UnitFile } from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type { HostDriver } from '../host/host-driver.js';
import type { AppliedRecord, ServiceBackup } from '../state/applied-record.js';
import { recordGood, recordRejected, recordRestored } from '../state/service-record.js';
import type { StateStore } from '../state/state-store.js';
import { eventHeader, imageWithId, type EventSource } from './events.js';
import { failureWithJournal } from './failure.js';
import { awaitReady, type Gate } from './health-gate.js';
import { isRunning, sameFiles } from './planner.js';
import { restoreService } from './rollback.js';
import { serviceFileNames } from './snapshot.js';

export interface InterruptedDeps extends EventSource {
  driver: HostDriver;
  store: StateStore;
  clock: Clock;
  pollMs?: number;
  /** Overrides every service's ready.settle (seconds). */
  settle?: number;
}

/** How one unfinished change ended. */
export interface Resolution {
  service: string;
  /** finished: its new version runs and passed the gate; undone: the backup's version runs again. */
  outcome: 'nothing to do' | 'finished' | 'undone' | 'rolled back' | 'not restored';
  detail?: string;
}

export interface ResolveReport {
  resolutions: Resolution[];
  events: DeviceEvent[];
}

/**
 * Finishes or undoes every change a crash or a power cut interrupted, before the agent does
 * anything else. A backup in the state directory is such a change (an apply's or an
 * auto-update's). Whatever the unit looks like now (crash-looping under Restart=, failed, not
 * started, running), the version on disk is brought up and gated again: if it passes it is
 * recorded as the one that runs (no restart: systemd started it at boot), otherwise the backup's
 * version is restored, and the failed one is not tried again (an apply's change stays failed in
 * its generation, an auto-update's image is rejected). Units written only in part are undone.
 */
export async function resolveInterrupted(deps: InterruptedDeps): Promise<ResolveReport> {
  const report: ResolveReport = { resolutions: [], events: [] };
  for (const name of await deps.store.listBackups()) {
    try {
      const backup = await deps.store.loadBackup(name);
      if (backup) await resolveOne(deps, backup, report);
    } catch (error) {
      // One service's broken backup must not keep the others unresolved.
      const message = `unfinished change of ${name}: ${(error as Error).message}`;
      report.resolutions.push({ service: name, outcome: 'not restored', detail: message });
      report.events.push({ ...eventHeader(deps), type: 'error', service: name, message });
    }
  }
  return report;
}

type OnDisk = 'before' | 'target' | 'partial';

async function resolveOne(
  deps: InterruptedDeps,
  backup: ServiceBackup,
  report: ResolveReport,
): Promise<void> {
  const { driver, store } = deps;
  const name = backup.name;
  const files = await unitFilesOf(driver, name);
  const onDisk: OnDisk = sameFiles(files, backup.files)
    ? 'before'
    : backup.target && sameFiles(files, backup.target.files)
      ? 'target'
      : 'partial';
  const done = async (resolution: Resolution) => {
    await store.dropBackup(name);
    report.resolutions.push(resolution);
  };

  if (onDisk === 'partial') {
    // Some files written, some not: neither version. Put the old one back; the next reconcile
    // makes the change again from the start.
    const restore = await restoreService(driver, deps.clock, backup, deps.pollMs);
    return done({
      service: name,
      outcome: restore.restored ? 'undone' : 'not restored',
      detail: restore.detail ?? 'unit files written in part',
    });
  }
  if (onDisk === 'before' && backup.origin !== 'auto-update') {
    // The apply stopped before its first write: nothing changed; the next reconcile starts over.
    return done({ service: name, outcome: 'nothing to do' });
  }
  if (backup.files.length === 0 && files.length === 0) {
    return done({ service: name, outcome: 'nothing to do' });
  }

  const spec = onDisk === 'target' ? backup.target!.spec : backup.spec;
  const hasSocket = files.some((file) => file.name === `${name}.socket`);
  await bringUp(driver, name, hasSocket);
  const running = (await driver.unitStatus(`${name}.service`)).container;
  if (
    backup.origin === 'auto-update' &&
    onDisk === 'before' &&
    running?.imageId === backup.imageId
  ) {
    // Podman had not restarted it yet: it runs the image it ran.
    return done({ service: name, outcome: 'nothing to do' });
  }
  const ready = spec?.ready ?? backup.ready;
  const gate: Gate = {
    units: hasSocket && !running ? [`${name}.socket`] : [`${name}.service`],
    ...ready,
    ...(deps.settle !== undefined ? { settle: deps.settle } : {}),
    health: spec ? spec.health !== undefined : backup.health,
  };
  const result = await awaitReady(driver, deps.clock, gate, deps.pollMs);
  const record = (await store.loadApplied()) ?? emptyRecord();
  // The image it ran at start (a crashed container is gone by the gate's end), else the gate's,
  // else (caught between two crashes) the one its reference names, which a unit start runs.
  const imageId =
    running?.imageId ??
    (await driver.unitStatus(`${name}.service`)).container?.imageId ??
    (spec ? await driver.imageId(spec.image) : undefined);

  if (result.ok) {
    if (onDisk === 'target') {
      recordGood(record, { ...backup.target!, imageId }, backup);
    } else {
      const recorded = record.services.find((s) => s.spec.name === name);
      if (recorded) recordGood(record, { ...recorded, imageId }, backup);
    }
    await store.saveApplied(record);
    return done({ service: name, outcome: 'finished' });
  }

  // Before the rollback restarts the previous version: the journal is the failed run's.
  const failure = await failureWithJournal(driver, {
    reason: result.failure,
    detail: result.reason,
    unit: result.unit,
  });
  // The bad version is marked before the rollback: a power cut during it must not make it new.
  const failedImage = spec?.image ?? backup.image ?? '';
  if (onDisk === 'target') {
    const target = backup.target!;
    record.failed = [
      ...record.failed.filter((f) => f.name !== name),
      {
        name,
        generation: target.generation,
        image: target.spec.image,
        files: target.files,
        reason: result.reason,
      },
    ];
  } else if (imageId && imageId !== backup.imageId) {
    const digest = await driver.imageDigest(imageId).catch(() => undefined);
    const at = new Date(deps.clock.now()).toISOString();
    const rejected = { image: failedImage, imageId, at, reason: result.reason };
    recordRejected(record, name, digest ? { ...rejected, digest } : rejected);
  }
  await store.saveApplied(record);
  const restore = await restoreService(driver, deps.clock, backup, deps.pollMs);
  recordRestored(record, backup);
  await store.saveApplied(record);
  // An auto-update keeps the reference and changes the image: name both by their local id then.
  const named = (image: string, id: string | undefined) =>
    backup.origin === 'auto-update' ? imageWithId(image, id) : image;
  report.events.push({
    ...eventHeader(deps),
    type: 'rollback',
    service: name,
    generation: onDisk === 'target' ? backup.target!.generation : record.generation,
    trigger: backup.origin ?? 'apply',
    fromImage: named(failedImage, imageId),
    toImage: named(backup.image ?? '', backup.imageId),
    reason: restore.restored
      ? `${result.reason} (change interrupted, gated at start)`
      : `${result.reason} (change interrupted, gated at start); not restored: ${restore.detail}`,
    restored: restore.restored,
    failure,
  });
  return done({
    service: name,
    outcome: restore.restored ? 'rolled back' : 'not restored',
    detail: result.reason,
  });
}

/**
 * The unit as systemd runs it from the files on disk: loaded (a crash before daemon-reload left
 * it stale) and started if it is not up (a crash before the restart, or a unit that gave up).
 */
async function bringUp(driver: HostDriver, name: string, hasSocket: boolean): Promise<void> {
  const main = hasSocket ? `${name}.socket` : `${name}.service`;
  const units = hasSocket ? [main, `${name}.service`] : [main];
  const statuses = await Promise.all(units.map((unit) => driver.unitStatus(unit)));
  if (statuses.some((status) => status.needsReload || status.load === 'not-found')) {
    await driver.daemonReload();
  }
  const status = await driver.unitStatus(main);
  if (isRunning(status)) return;
  if (status.active === 'failed') await driver.resetFailed(main);
  await driver.start(main);
}

async function unitFilesOf(driver: HostDriver, name: string): Promise<UnitFile[]> {
  const files = await Promise.all(
    serviceFileNames(name).map((f) => driver.readUnitFile(f.kind, f.name)),
  );
  return files.filter((file) => file !== undefined);
}

function emptyRecord(): AppliedRecord {
  return { generation: 0, style: 'service', services: [], failed: [] };
}
