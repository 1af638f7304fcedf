import type { SqlSession } from '../db/session.js';

/** A device message ingest did not store, and why: kept where an operator can see it. */
export interface QuarantineEntry {
  /** The device its topic names (it may not be enrolled). */
  device: string | undefined;
  topic: string;
  reason: string;
  payload: Buffer;
  receivedAt: Date;
}

/** Enough of a payload to see what it was; the rest is counted, not kept. */
export const QUARANTINE_EXCERPT_BYTES = 4096;
/** Rows kept per device, and in all: the newest. */
export const QUARANTINE_KEEP_PER_DEVICE = 100;
export const QUARANTINE_KEEP = 10_000;

/**
 * Stores entries (text made storable: a payload is any bytes) and drops the oldest beyond the
 * per-device and overall caps, so that no device can fill the table.
 */
export async function storeQuarantined(
  session: SqlSession,
  entries: readonly QuarantineEntry[],
): Promise<number> {
  if (entries.length === 0) return 0;
  const rows = entries.map((entry) => [
    entry.device === undefined ? null : storable(entry.device, 256),
    storable(entry.topic, 512),
    storable(entry.reason, 2048),
    storable(entry.payload.subarray(0, QUARANTINE_EXCERPT_BYTES).toString('utf8'), Infinity),
    entry.payload.length,
    entry.receivedAt,
  ]);
  await session.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO quarantined_messages (device_id, topic, reason, excerpt, payload_bytes, received_at)
       SELECT e->>0, e->>1, e->>2, e->>3, (e->>4)::int, (e->>5)::timestamptz
       FROM jsonb_array_elements($1::jsonb) AS e`,
      [JSON.stringify(rows)],
    );
    await tx.query(
      `DELETE FROM quarantined_messages WHERE id IN (
         SELECT id FROM (
           SELECT id, row_number() OVER (PARTITION BY device_id ORDER BY id DESC) AS nth
           FROM quarantined_messages WHERE device_id = ANY($1::text[])
         ) AS ranked WHERE nth > $2
       ) OR id <= (SELECT id FROM quarantined_messages ORDER BY id DESC OFFSET $3 LIMIT 1)`,
      [
        [...new Set(rows.map((row) => row[0]).filter((id) => id !== null))],
        QUARANTINE_KEEP_PER_DEVICE,
        QUARANTINE_KEEP,
      ],
    );
  });
  return entries.length;
}

/** Postgres text holds no NUL and JSON no lone surrogate; long values are cut. */
function storable(value: string, max: number): string {
  const clean = value.toWellFormed().replaceAll('\u0000', '\uFFFD');
  return clean.length > max ? `${clean.slice(0, max).toWellFormed()}…` : clean;
}

/**
 * How many invalid messages of one device are recorded and logged: `perMinute` each minute, the
 * rest counted and named in one line when the minute ends, so that a device flooding garbage
 * costs a counter, not a row and a log line each. A device refused `muteAfter` times in a minute
 * is muted for the rest of it: its messages are dropped unread (counted), so that parsing its
 * flood does not slow every other device's ingest.
 */
export class QuarantineGate {
  private readonly seen = new Map<
    string,
    { windowStart: number; taken: number; dropped: number }
  >();

  constructor(
    private readonly perMinute = 6,
    private readonly now: () => number = Date.now,
    private readonly muteAfter = 100,
  ) {}

  /** Whether `device` was refused `muteAfter` times in its current minute. */
  muted(device: string): boolean {
    const entry = this.seen.get(device);
    if (!entry || entry.taken + entry.dropped < this.muteAfter) return false;
    return this.now() - entry.windowStart < 60_000;
  }

  /** Counts a message of a muted device (dropped unread). */
  count(device: string): void {
    const entry = this.seen.get(device);
    if (entry) entry.dropped++;
  }

  /**
   * Whether this message of `device` is recorded; when a new minute starts for it, also how many
   * were only counted in the one before; and whether this refusal mutes it.
   */
  admit(device: string): { record: boolean; droppedBefore: number; mutes: boolean } {
    const now = this.now();
    let entry = this.seen.get(device);
    let droppedBefore = 0;
    if (!entry || now - entry.windowStart >= 60_000) {
      droppedBefore = entry?.dropped ?? 0;
      entry = { windowStart: now, taken: 0, dropped: 0 };
      this.seen.set(device, entry);
      if (this.seen.size > 10_000) this.forgetIdle(now);
    }
    const mutes = entry.taken + entry.dropped + 1 === this.muteAfter;
    if (entry.taken < this.perMinute) {
      entry.taken++;
      return { record: true, droppedBefore, mutes };
    }
    entry.dropped++;
    return { record: false, droppedBefore, mutes };
  }

  /** Bounds the map when many ids are seen (an open broker lets anyone name any topic). */
  private forgetIdle(now: number): void {
    for (const [device, entry] of this.seen)
      if (now - entry.windowStart >= 60_000) this.seen.delete(device);
  }
}
