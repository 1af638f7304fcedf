import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { controllerSubscriptions } from '@podfleet/shared';
import type { SqlSession } from '../db/session.js';
import { Batcher } from './batcher.js';
import { decodeDeviceMessage, type DecodedMessage } from './decode.js';
import { IngestJournal } from './journal.js';
import { QuarantineGate, storeQuarantined, type QuarantineEntry } from './quarantine.js';
import { storeBatch, type IngestBatch, type IngestCounts } from './store.js';

export interface IngestOptions {
  /** Where the journal lives (under PODFLEET_DATA). */
  journalDir: string;
  /** Runs `work` with a database session (a pooled connection, or the embedded store). */
  withSession: <T>(work: (session: SqlSession) => Promise<T>) => Promise<T>;
  log: Logger;
  /** After each batch is in the database: rollouts and live streams look at what arrived. */
  onStored?: (batch: IngestBatch, counts: IngestCounts) => void;
  maxBatch?: number;
  maxDelayMs?: number;
  retryMs?: number;
  /** The shared-subscription group; every controller of one fleet uses the same. */
  shareGroup?: string;
  /**
   * Refused messages of one device written to the quarantine each minute, and refusals in a
   * minute after which it is muted for the rest of it (QuarantineGate: 6 and 100).
   */
  quarantine?: { perMinute?: number; muteAfter?: number };
}

export interface IngestStats {
  received: number;
  /** Refused on arrival: outside the bounds or the schemas of what a device may send. */
  invalid: number;
  /** Rows written to the quarantine: refused messages (as many as QuarantineGate lets through) and
   * messages the database refused alone. */
  quarantined: number;
  /** Dropped unread from a device refused too often this minute (QuarantineGate). */
  muted: number;
  stored: IngestCounts;
}

interface Corkable {
  cork(): void;
  uncork(): void;
}

interface Item {
  /** Its journal record; none for a message refused on arrival (it is never journaled). */
  seq: number | undefined;
  topic: string;
  payload: Buffer;
  /** By this controller's clock. */
  receivedAt: number;
  /** What it says, or why it was refused. */
  message: DecodedMessage | undefined;
  refused?: { device?: string | undefined; reason: string };
}

/**
 * Devices' state reports, events and liveness, from MQTT to Postgres. Each valid message is
 * journaled before MQTT.js acknowledges it (see journal.ts), batched, and written one statement
 * per kind per batch. If the database fails, messages keep being journaled and acknowledged, and
 * are replayed from the journal, in order, once it answers again: nothing the broker handed over
 * is lost, and a controller restart resumes from the journal the same way.
 *
 * Until `replay` has stored what a previous process left, messages are only journaled: a
 * persistent session hands over what waited for it right after CONNACK, before any SUBSCRIBE, so
 * `listen` must be called before the connection opens (docs/decisions/004).
 */
export class DeviceIngest {
  readonly stats: IngestStats = {
    received: 0,
    invalid: 0,
    quarantined: 0,
    muted: 0,
    stored: { states: 0, events: 0, online: 0, unknownDevices: 0 },
  };
  /** Set after construction when the listener is built later (the rollout engine). */
  onStored: IngestOptions['onStored'];
  private readonly journal: IngestJournal;
  private readonly batcher: Batcher<Item>;
  /** Messages go to the journal only (at start, and while the database is down); replay stores them. */
  private journalOnly = true;
  private readonly clients = new Set<MqttClient>();
  /** Sockets whose PUBACKs wait for the journal write of this turn of the event loop. */
  private readonly heldAcks = new Set<Corkable>();
  /** MQTT.js's read of the next message, held while `maxWaiting` messages wait for the batcher. */
  private blockedReads: (() => void)[] = [];
  private readonly maxWaiting: number;
  private recovering: Promise<void> | undefined;
  private closed = false;
  private readonly gate: QuarantineGate;

  constructor(private readonly options: IngestOptions) {
    this.maxWaiting = 2 * (options.maxBatch ?? 2000);
    this.gate = new QuarantineGate(
      options.quarantine?.perMinute,
      undefined,
      options.quarantine?.muteAfter,
    );
    this.journal = IngestJournal.open(options.journalDir);
    this.batcher = new Batcher<Item>(
      (items) => this.flush(items),
      options.maxBatch ?? 2000,
      options.maxDelayMs ?? 25,
    );
  }

  /**
   * Stores what was journaled but not committed (by a previous process, or since `listen`), then
   * lets new messages through the batcher. Call before subscribing.
   */
  async replay(): Promise<number> {
    let replayed = 0;
    for (;;) {
      // Written and read synchronously: a message that arrives after an empty read is batched.
      this.journal.write();
      const records = IngestJournal.uncommitted(this.options.journalDir);
      if (records.length === 0) {
        this.journalOnly = false;
        return replayed;
      }
      for (let start = 0; start < records.length; start += 2000) {
        const chunk = records.slice(start, start + 2000);
        const items: Item[] = [];
        for (const { seq, topic, payload, receivedAt = Date.now() } of chunk) {
          // Journaled by an older controller under looser rules, or damaged: quarantined, not lost.
          const decoded = decodeDeviceMessage(topic, payload);
          items.push(
            decoded.ok
              ? { seq, topic, payload, receivedAt, message: decoded.message }
              : { seq, topic, payload, receivedAt, message: undefined, refused: decoded },
          );
        }
        await this.write(items);
        await this.journal.commit(chunk.at(-1)!.seq);
      }
      replayed += records.length;
    }
  }

  /**
   * Takes the client's messages; call before it connects (connectBroker's `prepare`). Several
   * clients may feed one ingest (a peer's broker session taken over, serve/peer-sessions.ts).
   */
  listen(client: MqttClient): void {
    if (this.clients.has(client)) return;
    this.clients.add(client);
    client.on('message', (topic, payload) => this.receive(topic, payload, client));
    // MQTT.js reads the next packet once this calls back. Holding it while batches wait keeps the
    // rest in the broker and the socket, and leaves the event loop free for Postgres' answers.
    client.handleMessage = (_packet, callback) => {
      if (this.batcher.pending < this.maxWaiting || this.closed) callback();
      else this.blockedReads.push(callback);
    };
  }

  /** Subscribes to the devices' topics: shared subscriptions where the broker offers them. */
  async subscribe(client: MqttClient, shared: boolean): Promise<void> {
    this.listen(client);
    await client.subscribeAsync(this.topicFilters(shared), { qos: 1 });
  }

  /** The topic filters `subscribe` uses. */
  topicFilters(shared: boolean): string[] {
    const filters = [
      controllerSubscriptions.state,
      controllerSubscriptions.events,
      controllerSubscriptions.online,
    ];
    const plain = filters.map((filter) => filter.replace(/^\$share\/[^/]+\//, ''));
    const group = this.options.shareGroup ?? 'podfleet';
    return shared ? plain.map((filter) => `$share/${group}/${filter}`) : plain;
  }

  /** Whether MQTT.js's reading is held for the batcher (see `listen`). */
  get holdingReads(): boolean {
    return this.blockedReads.length > 0;
  }

  /**
   * One MQTT message. MQTT.js writes its PUBACK right after this returns; the PUBACKs of one turn
   * of the event loop are held in the corked socket until their records are written together.
   */
  receive(topic: string, payload: Buffer, from?: MqttClient): void {
    if (this.closed) return;
    this.stats.received++;
    const receivedAt = Date.now();
    const device = topicDevice(topic);
    if (device !== undefined && this.gate.muted(device)) {
      // Refused 100 times this minute: not parsed again until the minute ends (QuarantineGate).
      this.stats.invalid++;
      this.stats.muted++;
      this.gate.count(device);
      return;
    }
    const decoded = decodeDeviceMessage(topic, payload);
    if (!decoded.ok) {
      this.stats.invalid++;
      // Acknowledged and not journaled: the broker must not hand it over again.
      if (this.admitRefusal(decoded.device ?? topic) && !this.journalOnly)
        this.batcher.add({
          seq: undefined,
          topic,
          payload,
          receivedAt,
          message: undefined,
          refused: decoded,
        });
      return;
    }
    const seq = this.journal.append(topic, payload, receivedAt);
    this.holdAcks(from);
    if (!this.journalOnly)
      this.batcher.add({ seq, topic, payload, receivedAt, message: decoded.message });
  }

  /** Whether a refused message of `device` is recorded: a few a minute, the rest counted. */
  private admitRefusal(device: string): boolean {
    const { record, droppedBefore, mutes } = this.gate.admit(device);
    if (droppedBefore > 0)
      this.options.log.warn(
        { device: printable(device), refused: droppedBefore },
        'device messages refused in the last minute beyond those quarantined (counted only)',
      );
    if (mutes)
      this.options.log.warn(
        { device: printable(device) },
        'device muted until its minute ends: 100 messages refused; the rest are dropped unread',
      );
    return record;
  }

  /** Stores everything received so far. */
  async drain(): Promise<void> {
    await this.batcher.drain();
    await this.recovering;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.releaseRead();
    this.writeHeld();
    await this.batcher.close();
    await this.recovering;
    await this.journal.close();
  }

  private holdAcks(from: MqttClient | undefined): void {
    const socket: Partial<Corkable> | undefined = from?.stream;
    if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') {
      this.journal.write(); // nothing to hold the PUBACK in: write before it goes out
      return;
    }
    if (this.heldAcks.has(socket as Corkable)) return;
    if (this.heldAcks.size === 0) setImmediate(this.writeHeld);
    socket.cork();
    this.heldAcks.add(socket as Corkable);
  }

  /** A failed write throws here, ending the process before the held PUBACKs are sent. */
  private readonly writeHeld = (): void => {
    this.journal.write();
    const sockets = [...this.heldAcks];
    this.heldAcks.clear();
    for (const socket of sockets) socket.uncork();
  };

  private async flush(items: Item[]): Promise<void> {
    if (this.journalOnly) return; // already in the journal; recovery replays it
    try {
      this.releaseRead();
      await this.write(items);
      const last = items.findLast((item) => item.seq !== undefined)?.seq;
      if (last === undefined) return;
      this.journal
        .commit(last)
        .catch((error: unknown) =>
          this.options.log.warn(
            { err: error },
            'ingest journal checkpoint failed; retried next batch',
          ),
        );
    } catch (error) {
      this.options.log.error(
        { err: error },
        'storing device messages failed; replaying from the journal when the database answers',
      );
      this.journalOnly = true;
      this.releaseRead();
      this.recovering = this.recover();
    }
  }

  /** Reads on once the batcher has taken a batch (or when ingest stops feeding it). */
  private releaseRead(): void {
    const reads = this.blockedReads;
    this.blockedReads = [];
    for (const read of reads) read();
  }

  private async recover(): Promise<void> {
    const retryMs = this.options.retryMs ?? 1000;
    for (;;) {
      await this.batcher.drain(); // flushes queued before the failure return at once
      try {
        await this.replay();
        this.options.log.info('database answers again; device messages caught up from the journal');
        return;
      } catch {
        // Closing while the database is down: the journal keeps the rest for the next start.
        if (this.closed) return;
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  }

  /**
   * Stores the valid messages and quarantines the rest. Throws only when the database does not
   * answer: then the journal keeps everything for the replay.
   */
  private async write(items: Item[]): Promise<void> {
    if (items.length === 0) return;
    const quarantine: QuarantineEntry[] = [];
    const valid: Item[] = [];
    for (const item of items) {
      if (item.refused) quarantine.push(this.entry(item, item.refused.reason));
      else valid.push(item);
    }
    await this.storeIsolating(valid, quarantine);
    if (quarantine.length === 0) return;
    await this.options.withSession((session) => storeQuarantined(session, quarantine));
    this.stats.quarantined += quarantine.length;
    for (const entry of quarantine)
      this.options.log.warn(
        { device: entry.device && printable(entry.device), topic: printable(entry.topic) },
        `device message quarantined: ${printable(entry.reason)}`,
      );
  }

  /**
   * Stores `items`; when the database answers but refuses them, stores each half apart, down to
   * the one message it refuses alone, which goes to `quarantine`: one record never holds up the
   * rest of its batch, nor the journal's replay at start.
   */
  private async storeIsolating(items: Item[], quarantine: QuarantineEntry[]): Promise<void> {
    if (items.length === 0) return;
    try {
      await this.store(items);
    } catch (error) {
      if (isTransient(error) || !(await this.databaseAnswers())) throw error;
      if (items.length > 1) {
        const middle = items.length >> 1;
        await this.storeIsolating(items.slice(0, middle), quarantine);
        await this.storeIsolating(items.slice(middle), quarantine);
        return;
      }
      const reason = `database refused it: ${(error as Error).message}`;
      quarantine.push(this.entry(items[0]!, reason));
    }
  }

  private entry(item: Item, reason: string): QuarantineEntry {
    return {
      device: item.refused ? item.refused.device : item.message?.device,
      topic: item.topic,
      reason,
      payload: item.payload,
      receivedAt: new Date(item.receivedAt),
    };
  }

  private async databaseAnswers(): Promise<boolean> {
    try {
      await this.options.withSession((session) => session.query('SELECT 1'));
      return true;
    } catch {
      return false;
    }
  }

  private async store(items: Item[]): Promise<void> {
    const batch: IngestBatch = { states: [], events: [], online: [] };
    for (const { message, receivedAt } of items) {
      const at = new Date(receivedAt);
      if (message?.kind === 'state') batch.states.push({ report: message.state, receivedAt: at });
      else if (message?.kind === 'event')
        batch.events.push({ event: message.event, receivedAt: at });
      else if (message) batch.online.push({ device: message.device, status: message.status, at });
    }
    const counts = await this.options.withSession((session) => storeBatch(session, batch));
    this.stats.stored.states += counts.states;
    this.stats.stored.events += counts.events;
    this.stats.stored.online += counts.online;
    this.stats.stored.unknownDevices += counts.unknownDevices;
    this.options.log.debug(counts, 'device messages stored');
    (this.onStored ?? this.options.onStored)?.(batch, counts);
  }
}

/**
 * Errors that say nothing about the data: lost connections, deadlocks, serialization failures,
 * cancelled statements, resources (SQLSTATE classes 08, 40, 53, 57, 58 and lock timeouts).
 */
function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return false;
  return /^(08|40|53|57|58)/.test(code) || code === '55P03';
}

/** A device's text in a log line: control characters shown, not passed to a terminal. */
function printable(value: string): string {
  const shown = value.length > 512 ? `${value.slice(0, 512)}…` : value;
  return JSON.stringify(shown).slice(1, -1);
}

/** The device a topic names (`pf/v1/dev/{id}/…`), without parsing the rest. */
function topicDevice(topic: string): string | undefined {
  if (!topic.startsWith('pf/v1/dev/')) return undefined;
  const end = topic.indexOf('/', 10);
  return end === -1 ? undefined : topic.slice(10, end);
}
