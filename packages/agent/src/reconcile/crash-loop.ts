import type { DeviceEvent } from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type { HostDriver } from '../host/host-driver.js';
import { recordRejected, recordRestored } from '../state/service-record.js';
import type { StateStore } from '../state/state-store.js';
import { eventHeader, imageWithId, type EventSource } from './events.js';
import { failureWithJournal } from './failure.js';
import { sameFiles } from './planner.js';
import { restoreService } from './rollback.js';

export interface CrashLoopDeps extends EventSource {
  driver: HostDriver;
  store: StateStore;
  clock: Clock;
  pollMs?: number;
}

/**
 * A service found crash-looping (or failed) after its version passed the gate goes back to the
 * good version before it, once: that version is recorded without a `previous`, and the bad one is
 * not tried again — an image that came by auto-update is rejected, a change that came by a
 * manifest stays failed in its generation. Undefined when there is nothing to go back to.
 */
export async function rollBackCrashLoop(
  deps: CrashLoopDeps,
  name: string,
  why: string,
): Promise<DeviceEvent | undefined> {
  const { driver, store, clock } = deps;
  const record = await store.loadApplied();
  const bad = record?.services.find((s) => s.spec.name === name);
  const previous = bad?.previous;
  if (!record || !bad || !previous?.spec || previous.files.length === 0) return undefined;

  const unit = `${name}.service`;
  const failure = await failureWithJournal(driver, {
    reason: 'crashed-after-start',
    detail: why,
    unit,
  });
  // The bad version is marked before the rollback: a power cut during it must not make it new.
  if (!sameFiles(bad.files, previous.files)) {
    record.failed = [
      ...record.failed.filter((f) => f.name !== name),
      { name, generation: record.generation, image: bad.spec.image, files: bad.files, reason: why },
    ];
  }
  if (bad.imageId && bad.imageId !== previous.imageId && bad.spec.image === previous.spec.image) {
    const digest = await driver.imageDigest(bad.imageId).catch(() => undefined);
    const at = new Date(clock.now()).toISOString();
    const rejected = { image: bad.spec.image, imageId: bad.imageId, at, reason: why };
    recordRejected(record, name, digest ? { ...rejected, digest } : rejected);
  }
  await store.saveApplied(record);
  const restore = await restoreService(driver, clock, previous, deps.pollMs);
  recordRestored(record, previous);
  await store.saveApplied(record);
  return {
    ...eventHeader(deps),
    type: 'rollback',
    service: name,
    generation: record.generation,
    trigger: 'health',
    fromImage: imageWithId(bad.spec.image, bad.imageId),
    toImage: imageWithId(previous.image ?? previous.spec.image, previous.imageId),
    reason: restore.restored ? why : `${why}; not restored: ${restore.detail}`,
    restored: restore.restored,
    failure,
  };
}
