import type { RejectedImage, ServiceSpec, UnitFile } from '@podfleet/shared';
import { sameFiles } from '../reconcile/planner.js';
import type { AppliedRecord, ServiceBackup } from './applied-record.js';

/** A version that just passed its gate. */
export interface GoodVersion {
  spec: ServiceSpec;
  files: UnitFile[];
  imageId?: string | undefined;
}

/**
 * Records `good` as the service's last good version; the backup of the version it replaced (when
 * there was one that differs) becomes `previous`, where a later crash loop rolls back to. A
 * rejected image stays rejected while the spec names the same image.
 */
export function recordGood(
  record: AppliedRecord,
  good: GoodVersion,
  replaced: ServiceBackup | undefined,
): void {
  const name = good.spec.name;
  const old = record.services.find((s) => s.spec.name === name);
  const changed =
    replaced !== undefined &&
    replaced.files.length > 0 &&
    (replaced.imageId !== good.imageId || !sameFiles(replaced.files, good.files));
  const previous = changed ? replaced : old?.previous;
  const rejected = old?.rejected?.image === good.spec.image ? old.rejected : undefined;
  record.services = [
    ...record.services.filter((s) => s.spec.name !== name),
    {
      spec: good.spec,
      files: good.files,
      ...(good.imageId ? { imageId: good.imageId } : {}),
      ...(previous ? { previous } : {}),
      ...(rejected && rejected.imageId !== good.imageId ? { rejected } : {}),
    },
  ];
  record.failed = record.failed.filter((f) => f.name !== name);
}

/**
 * Records that the service runs its backup's version again (after a rollback): that version, with
 * no `previous` (a crash loop of it has nowhere to go). A backup of a fresh install leaves nothing.
 */
export function recordRestored(record: AppliedRecord, backup: ServiceBackup): void {
  const old = record.services.find((s) => s.spec.name === backup.name);
  const spec = backup.spec ?? old?.spec;
  record.services = record.services.filter((s) => s.spec.name !== backup.name);
  if (!spec || backup.files.length === 0) return;
  record.services.push({
    spec,
    files: backup.files,
    ...(backup.imageId ? { imageId: backup.imageId } : {}),
    ...(old?.rejected ? { rejected: old.rejected } : {}),
  });
}

/** Auto-update skips `rejected` for this service from now on. */
export function recordRejected(record: AppliedRecord, name: string, rejected: RejectedImage): void {
  const service = record.services.find((s) => s.spec.name === name);
  if (service) service.rejected = rejected;
}
