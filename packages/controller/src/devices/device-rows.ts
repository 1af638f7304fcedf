import type { Transaction } from '../audit/change.js';
import { unknownDevice } from './unknown-device.js';

/** A JSON merge patch of labels (RFC 7396): a value sets a label, null removes it. */
export type LabelPatch = Record<string, string | null>;

/**
 * Applies `patch` to a device's labels in one UPDATE, so that concurrent patches of one device
 * each keep what they set (a read, a merge in JavaScript and a write would keep only the last).
 * False when the device does not exist, or was deleted while the UPDATE waited for its row.
 */
export async function patchLabels(
  tx: Transaction,
  id: string,
  patch: LabelPatch,
): Promise<boolean> {
  const set: Record<string, string> = {};
  const removed: string[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) removed.push(key);
    else set[key] = value;
  }
  // updated_at by hand: Prisma's @updatedAt is set by the client, not by the column.
  const count = await tx.$executeRaw`
    UPDATE devices
       SET labels = (labels || ${JSON.stringify(set)}::jsonb) - ${removed}::text[],
           updated_at = now()
     WHERE id = ${id}`;
  return count > 0;
}

/**
 * Locks the device's row until the transaction ends, 404 unless it exists; NO KEY UPDATE, so rows
 * that refer to the device (events, memberships) can still be written meanwhile.
 */
export async function lockDevice(tx: Transaction, id: string): Promise<void> {
  const rows = await tx.$queryRaw<{ id: string }[]>`
    SELECT id FROM devices WHERE id = ${id} FOR NO KEY UPDATE`;
  if (rows.length === 0) throw await unknownDevice(tx, id);
}
