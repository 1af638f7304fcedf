import type { Clock } from '../clock/clock.js';
import type { HostDriver } from '../host/host-driver.js';
import type { ServiceBackup } from '../state/applied-record.js';
import { awaitReady } from './health-gate.js';
import { serviceFileNames } from './snapshot.js';

export interface RestoreResult {
  /** The previous units and image run again and passed the gate. */
  restored: boolean;
  detail?: string;
}

/**
 * Puts a service back as the backup found it: stop the new version, restore the previous unit
 * files (removing files only the new one had), point the image reference at the previous image
 * again (as `podman auto-update --rollback` re-tags it), daemon-reload, start, and gate.
 */
export async function restoreService(
  driver: HostDriver,
  clock: Clock,
  backup: ServiceBackup,
  pollMs?: number,
): Promise<RestoreResult> {
  const service = `${backup.name}.service`;
  const socket = `${backup.name}.socket`;
  // Socket first: while it listens, a connection would start the service again.
  await quietly(driver.stop(socket));
  await quietly(driver.stop(service));
  for (const unit of [socket, service]) {
    const status = await driver.unitStatus(unit);
    if (status.fileState === 'enabled' && !backup.enabled.includes(unit)) {
      await quietly(driver.disable(unit));
    }
  }
  for (const candidate of serviceFileNames(backup.name)) {
    const previous = backup.files.find(
      (f) => f.kind === candidate.kind && f.name === candidate.name,
    );
    const now = await driver.readUnitFile(candidate.kind, candidate.name);
    if (!previous && now) await driver.removeUnitFile(candidate.kind, candidate.name);
    if (previous && now?.contents !== previous.contents) await driver.writeUnitFile(previous);
  }
  const imageProblem = await restoreImage(driver, backup);
  await driver.daemonReload();
  await quietly(driver.resetFailed(service));
  await quietly(driver.resetFailed(socket));
  if (backup.files.length === 0) return { restored: false, detail: 'no previous version' };
  for (const unit of backup.enabled) await quietly(driver.enable(unit));

  const hasSocket = backup.files.some((file) => file.name === socket);
  const units = backup.active.length > 0 ? backup.active : [hasSocket ? socket : service];
  try {
    for (const unit of units) await driver.start(unit);
  } catch (error) {
    return { restored: false, detail: joined(imageProblem, (error as Error).message) };
  }
  const gate = await awaitReady(
    driver,
    clock,
    { units, ...backup.ready, health: backup.health },
    pollMs,
  );
  return gate.ok
    ? { restored: true }
    : { restored: false, detail: joined(imageProblem, gate.reason) };
}

function joined(...parts: Array<string | undefined>): string {
  return parts.filter(Boolean).join('; ');
}

/** Re-tags the reference to the previous image id; pulls it if that image is gone. */
async function restoreImage(
  driver: HostDriver,
  backup: ServiceBackup,
): Promise<string | undefined> {
  if (!backup.image) return undefined;
  if (backup.imageId) {
    try {
      await driver.tagImage(backup.imageId, backup.image);
      return undefined;
    } catch {
      // The previous image was removed from local storage: the registry is the only way back.
    }
  }
  if ((await driver.imageId(backup.image)) !== undefined) return undefined;
  try {
    await driver.pullImage(backup.image);
    return undefined;
  } catch (error) {
    return `previous image ${backup.image} unavailable: ${(error as Error).message}`;
  }
}

async function quietly(work: Promise<unknown>): Promise<void> {
  try {
    await work;
  } catch {
    // The unit may not exist (any more): nothing to undo then.
  }
}
