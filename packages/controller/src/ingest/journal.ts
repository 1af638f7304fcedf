import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

/** One received MQTT message, as journaled before the broker is told it arrived. */
export interface JournalRecord {
  seq: number;
  topic: string;
  payload: Buffer;
}

const SEGMENT = /^segment-(\d{16})\.log$/;
const HEADER = 12; // u32 topic length, u32 payload length, u32 checksum

/**
 * The controller acknowledges a device's message to the broker only after writing it here, and
 * marks it committed once Postgres has it. A controller that dies between the two finds the
 * message again at start (replay is idempotent: events have ids, states carry their time).
 *
 * Why a local file: MQTT.js handles one message at a time and sends PUBACK when the handler
 * returns, so holding the PUBACK until a batch reaches Postgres would ingest one message per batch.
 * A write() to the page cache survives a crash of the process; `fsync` runs at every commit.
 */
export class IngestJournal {
  private fd: number;
  private segmentStart: number;
  private segmentBytes = 0;
  private nextSeq: number;
  private committed: number;

  private constructor(
    private readonly dir: string,
    private readonly maxSegmentBytes: number,
  ) {
    mkdirSync(dir, { recursive: true });
    this.committed = readCheckpoint(dir);
    const segments = listSegments(dir);
    const last = segments.at(-1);
    this.nextSeq = Math.max(this.committed + 1, last === undefined ? 1 : lastSeqIn(dir, last) + 1);
    this.segmentStart = this.nextSeq;
    this.fd = openSync(segmentPath(dir, this.segmentStart), 'a');
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

  /** Writes one message; returns its sequence number. */
  append(topic: string, payload: Buffer): number {
    if (this.segmentBytes >= this.maxSegmentBytes) this.rotate();
    const topicBytes = Buffer.from(topic);
    const frame = Buffer.allocUnsafe(HEADER + topicBytes.length + payload.length);
    frame.writeUInt32LE(topicBytes.length, 0);
    frame.writeUInt32LE(payload.length, 4);
    topicBytes.copy(frame, HEADER);
    payload.copy(frame, HEADER + topicBytes.length);
    frame.writeUInt32LE(checksum(frame.subarray(HEADER)), 8);
    writeSync(this.fd, frame);
    this.segmentBytes += frame.length;
    return this.nextSeq++;
  }

  /** Everything up to and including `seq` is in Postgres. */
  commit(seq: number): void {
    if (seq <= this.committed) return;
    fsyncSync(this.fd);
    this.committed = seq;
    const temporary = join(this.dir, 'checkpoint.tmp');
    writeFileSync(temporary, String(seq));
    renameSync(temporary, join(this.dir, 'checkpoint'));
    // Segments whose every record is committed are no longer needed.
    const segments = listSegments(this.dir);
    for (let i = 0; i + 1 < segments.length; i++) {
      if (segments[i + 1]! - 1 <= seq && segments[i] !== this.segmentStart)
        rmSync(segmentPath(this.dir, segments[i]!));
    }
  }

  close(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
  }

  private rotate(): void {
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.segmentStart = this.nextSeq;
    this.segmentBytes = 0;
    this.fd = openSync(segmentPath(this.dir, this.segmentStart), 'a');
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
  const data = readFileSync(segmentPath(dir, start));
  const records: JournalRecord[] = [];
  let offset = 0;
  let seq = start;
  while (offset + HEADER <= data.length) {
    const topicLength = data.readUInt32LE(offset);
    const payloadLength = data.readUInt32LE(offset + 4);
    const end = offset + HEADER + topicLength + payloadLength;
    if (end > data.length) break;
    const body = data.subarray(offset + HEADER, end);
    if (checksum(body) !== data.readUInt32LE(offset + 8)) break;
    records.push({
      seq: seq++,
      topic: body.subarray(0, topicLength).toString(),
      payload: Buffer.from(body.subarray(topicLength)),
    });
    offset = end;
  }
  return records;
}

/** FNV-1a: enough to tell a torn write from a whole frame. */
function checksum(bytes: Buffer): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash >>> 0;
}
