import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  writeSync,
} from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One received MQTT message, as journaled before the broker is told it arrived. */
export interface JournalRecord {
  seq: number;
  topic: string;
  payload: Buffer;
  /** When the controller received it (ms, its own clock); absent in records of older journals. */
  receivedAt?: number;
}

const SEGMENT = /^segment-(\d{16})\.log$/;
const HEADER = 12; // u32 topic length, u32 payload length, u32 checksum
/** Set in the topic length of a frame that carries its receive time (f64 ms) before the topic. */
const TIMED = 0x8000_0000;
const TIME = 8;

/**
 * The controller acknowledges a device's message to the broker only after writing it here, and
 * marks it committed once Postgres has it. A controller that dies between the two finds the
 * message again at start (replay is idempotent: events have ids, states carry their time).
 *
 * Why a local file: MQTT.js handles one message at a time and sends PUBACK when the handler
 * returns, so holding the PUBACK until a batch reaches Postgres would ingest one message per batch.
 * A write() to the page cache survives a crash of the process. `append` only frames a record;
 * `write` puts every framed record into the file with one system call, and the caller holds the
 * PUBACKs until it has (device-ingest.ts). `commit` runs off the event loop: an fsync of the
 * segment (narrowing what a crash of the machine can take) and the checkpoint, one at a time.
 */
export class IngestJournal {
  private fd: number;
  private segmentStart: number;
  private segmentBytes = 0;
  private readonly segments: number[];
  private nextSeq: number;
  private unwritten: Buffer[] = [];
  private unwrittenBytes = 0;
  /** The highest sequence number in the checkpoint file, and the one asked for. */
  private committed: number;
  private commitTarget: number;
  private committing: Promise<void> | undefined;

  private constructor(
    private readonly dir: string,
    private readonly maxSegmentBytes: number,
  ) {
    mkdirSync(dir, { recursive: true });
    this.committed = readCheckpoint(dir);
    this.commitTarget = this.committed;
    this.segments = listSegments(dir);
    const last = this.segments.at(-1);
    this.nextSeq = Math.max(this.committed + 1, last === undefined ? 1 : lastSeqIn(dir, last) + 1);
    this.segmentStart = this.nextSeq;
    this.fd = this.openSegment();
  }

  /** A new segment starts once the current one holds `maxSegmentBytes`. */
  static open(dir: string, maxSegmentBytes = 16 * 1024 * 1024): IngestJournal {
    return new IngestJournal(dir, maxSegmentBytes);
  }

  /** Records written but not yet committed, oldest first: what a previous process left. */
  static uncommitted(dir: string): JournalRecord[] {
    mkdirSync(dir, { recursive: true });
    const committed = readCheckpoint(dir);
    const records: JournalRecord[] = [];
    for (const start of listSegments(dir)) {
      for (const record of readSegment(dir, start))
        if (record.seq > committed) records.push(record);
    }
    return records;
  }

  /** Frames one message, received at `receivedAt`, for the next `write`; returns its sequence number. */
  append(topic: string, payload: Buffer, receivedAt = Date.now()): number {
    const topicLength = Buffer.byteLength(topic);
    const frame = Buffer.allocUnsafe(HEADER + TIME + topicLength + payload.length);
    frame.writeUInt32LE((topicLength | TIMED) >>> 0, 0);
    frame.writeUInt32LE(payload.length, 4);
    frame.writeDoubleLE(receivedAt, HEADER);
    frame.write(topic, HEADER + TIME);
    payload.copy(frame, HEADER + TIME + topicLength);
    frame.writeUInt32LE(checksum(frame, HEADER), 8);
    this.unwritten.push(frame);
    this.unwrittenBytes += frame.length;
    return this.nextSeq++;
  }

  /** Whether appended records wait for `write`. */
  get pending(): boolean {
    return this.unwritten.length > 0;
  }

  /** Writes every appended record to the file, with one system call. */
  write(): void {
    if (this.unwritten.length === 0) return;
    if (this.segmentBytes >= this.maxSegmentBytes)
      this.rotate(this.nextSeq - this.unwritten.length);
    const frames =
      this.unwritten.length === 1
        ? this.unwritten[0]!
        : Buffer.concat(this.unwritten, this.unwrittenBytes);
    this.unwritten = [];
    this.unwrittenBytes = 0;
    let offset = 0;
    while (offset < frames.length) offset += writeSync(this.fd, frames, offset);
    this.segmentBytes += frames.length;
  }

  /**
   * Everything up to and including `seq` is in Postgres. Resolves once a checkpoint at least as
   * far is on disk; commits asked for while one runs are folded into the next.
   */
  commit(seq: number): Promise<void> {
    if (seq > this.commitTarget) this.commitTarget = seq;
    if (!this.committing && this.commitTarget > this.committed)
      this.committing = this.commitPending();
    return this.committing ?? Promise.resolve();
  }

  async close(): Promise<void> {
    this.write();
    await this.committing;
    fsyncSync(this.fd);
    closeSync(this.fd);
  }

  private async commitPending(): Promise<void> {
    try {
      while (this.commitTarget > this.committed) {
        const seq = this.commitTarget;
        // Another descriptor of the same file: fsync flushes the file, and rotate() may close ours.
        const segment = await open(segmentPath(this.dir, this.segmentStart), 'r');
        try {
          await segment.sync();
        } finally {
          await segment.close();
        }
        const temporary = join(this.dir, 'checkpoint.tmp');
        await writeFile(temporary, String(seq));
        await rename(temporary, join(this.dir, 'checkpoint'));
        this.committed = seq;
        await this.dropCommittedSegments();
      }
    } finally {
      // In the same turn as the loop's last check, so that a later commit() starts a new run.
      this.committing = undefined;
    }
  }

  /** Segments whose every record is committed are no longer needed. */
  private async dropCommittedSegments(): Promise<void> {
    while (
      this.segments.length > 1 &&
      this.segments[1]! - 1 <= this.committed &&
      this.segments[0] !== this.segmentStart
    ) {
      const start = this.segments.shift()!;
      await rm(segmentPath(this.dir, start), { force: true });
    }
  }

  private rotate(start: number): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.segmentStart = start;
    this.segmentBytes = 0;
    this.fd = this.openSegment();
  }

  private openSegment(): number {
    if (this.segments.at(-1) !== this.segmentStart) this.segments.push(this.segmentStart);
    return openSync(segmentPath(this.dir, this.segmentStart), 'a');
  }
}

function segmentPath(dir: string, start: number): string {
  return join(dir, `segment-${String(start).padStart(16, '0')}.log`);
}

function listSegments(dir: string): number[] {
  return readdirSync(dir)
    .map((name) => SEGMENT.exec(name)?.[1])
    .filter((start): start is string => start !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

function readCheckpoint(dir: string): number {
  try {
    return Number(readFileSync(join(dir, 'checkpoint'), 'utf8')) || 0;
  } catch {
    return 0;
  }
}

function lastSeqIn(dir: string, start: number): number {
  const records = readSegment(dir, start);
  return records.length === 0 ? start - 1 : records.at(-1)!.seq;
}

/** The records of a segment; a torn frame at the end (a crash mid-write) ends it. */
function readSegment(dir: string, start: number): JournalRecord[] {
  let data: Buffer;
  try {
    data = readFileSync(segmentPath(dir, start));
  } catch (error) {
    // Deleted by a commit since it was listed: every record in it was committed.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const records: JournalRecord[] = [];
  let offset = 0;
  let seq = start;
  while (offset + HEADER <= data.length) {
    const lengthField = data.readUInt32LE(offset);
    // Frames written before receive times were kept have none.
    const timed = (lengthField & TIMED) !== 0;
    const topicLength = lengthField & ~TIMED;
    const payloadLength = data.readUInt32LE(offset + 4);
    const body = offset + HEADER + (timed ? TIME : 0);
    const end = body + topicLength + payloadLength;
    if (end > data.length) break;
    if (checksum(data.subarray(offset, end), HEADER) !== data.readUInt32LE(offset + 8)) break;
    const record: JournalRecord = {
      seq: seq++,
      topic: data.toString('utf8', body, body + topicLength),
      payload: Buffer.from(data.subarray(body + topicLength, end)),
    };
    if (timed) record.receivedAt = data.readDoubleLE(offset + HEADER);
    records.push(record);
    offset = end;
  }
  return records;
}

/** FNV-1a of `bytes` from `from` on: enough to tell a torn write from a whole frame. */
function checksum(bytes: Buffer, from: number): number {
  let hash = 0x811c9dc5;
  for (let i = from; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}
