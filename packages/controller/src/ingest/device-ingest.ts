import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { controllerSubscriptions } from '@podfleet/shared';
import type { SqlSession } from '../db/session.js';
import { Batcher } from './batcher.js';
import { decodeDeviceMessage, type DecodedMessage } from './decode.js';
import { IngestJournal } from './journal.js';
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
}

export interface IngestStats {
  received: number;
  invalid: number;
  stored: IngestCounts;
}

interface Item {
  seq: number;
  message: DecodedMessage;
}

/**
 * Devices' state reports, events and liveness, from MQTT to Postgres. Each valid message is
 * journaled before MQTT.js acknowledges it (see journal.ts), batched, and written one statement
 * per kind per batch. If the database fails, messages keep being journaled and acknowledged, and
 * are replayed from the journal, in order, once it answers again: nothing the broker handed over
 * is lost, and a controller restart resumes from the journal the same way.
 */
export class DeviceIngest {
  readonly stats: IngestStats = {
    received: 0,
    invalid: 0,
    stored: { states: 0, events: 0, online: 0, unknownDevices: 0 },
  };
  /** Set after construction when the listener is built later (the rollout engine). */
  onStored: IngestOptions['onStored'];
  private readonly journal: IngestJournal;
  private readonly batcher: Batcher<Item>;
  private degraded = false;
  private recovering: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: IngestOptions) {
    this.journal = IngestJournal.open(options.journalDir);
    this.batcher = new Batcher<Item>(
      (items) => this.flush(items),
      options.maxBatch ?? 2000,
      options.maxDelayMs ?? 25,
    );
  }

  /** Stores what a previous process journaled but never committed. Call before subscribing. */
  async replay(): Promise<number> {
    let replayed = 0;
    for (;;) {
      // Read synchronously: a message that arrives after an empty read is batched as usual.
      const records = IngestJournal.uncommitted(this.options.journalDir);
      if (records.length === 0) return replayed;
      for (let start = 0; start < records.length; start += 2000) {
        const chunk = records.slice(start, start + 2000);
        const items: Item[] = [];
        for (const record of chunk) {
          const decoded = decodeDeviceMessage(record.topic, record.payload);
          if (decoded.ok) items.push({ seq: record.seq, message: decoded.message });
        }
        await this.write(items);
        this.journal.commit(chunk.at(-1)!.seq);
      }
      replayed += records.length;
    }
  }

  /** Subscribes to the devices' topics: shared subscriptions where the broker offers them. */
  async subscribe(client: MqttClient, shared: boolean): Promise<void> {
    client.on('message', (topic, payload) => this.receive(topic, payload));
    const filters = [
      controllerSubscriptions.state,
      controllerSubscriptions.events,
      controllerSubscriptions.online,
    ];
    const plain = filters.map((filter) => filter.replace(/^\$share\/[^/]+\//, ''));
    const group = this.options.shareGroup ?? 'podfleet';
    const grouped = plain.map((filter) => `$share/${group}/${filter}`);
    await client.subscribeAsync(shared ? grouped : plain, { qos: 1 });
  }

  /** One MQTT message; synchronous, so that MQTT.js acknowledges it only after the journal write. */
  receive(topic: string, payload: Buffer): void {
    if (this.closed) return;
    this.stats.received++;
    const decoded = decodeDeviceMessage(topic, payload);
    if (!decoded.ok) {
      this.stats.invalid++;
      this.options.log.warn(
        { device: decoded.device, topic },
        `invalid device message dropped: ${decoded.reason}`,
      );
      return;
    }
    const seq = this.journal.append(topic, payload);
    if (!this.degraded) this.batcher.add({ seq, message: decoded.message });
  }

  /** Stores everything received so far. */
  async drain(): Promise<void> {
    await this.batcher.drain();
    await this.recovering;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.batcher.close();
    await this.recovering;
    this.journal.close();
  }

  private async flush(items: Item[]): Promise<void> {
    if (this.degraded) return; // already in the journal; recovery replays it
    try {
      await this.write(items);
      this.journal.commit(items.at(-1)!.seq);
    } catch (error) {
      this.options.log.error(
        { err: error },
        'storing device messages failed; replaying from the journal when the database answers',
      );
      this.degraded = true;
      this.recovering = this.recover();
    }
  }

  private async recover(): Promise<void> {
    const retryMs = this.options.retryMs ?? 1000;
    for (;;) {
      await this.batcher.drain(); // flushes queued before the failure return at once
      try {
        await this.catchUp();
        this.options.log.info('database answers again; device messages caught up from the journal');
        return;
      } catch {
        // Closing while the database is down: the journal keeps the rest for the next start.
        if (this.closed) return;
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  }

  /** Replays the journal until it is empty, then leaves degraded mode in the same tick. */
  private async catchUp(): Promise<void> {
    await this.replay();
    this.degraded = false;
  }

  private async write(items: Item[]): Promise<void> {
    if (items.length === 0) return;
    const batch: IngestBatch = { states: [], events: [], online: [] };
    for (const { message } of items) {
      if (message.kind === 'state') batch.states.push(message.state);
      else if (message.kind === 'event') batch.events.push(message.event);
      else batch.online.push({ device: message.device, status: message.status, at: new Date() });
    }
    const counts = await this.options.withSession((session) => storeBatch(session, batch));
    this.stats.stored.states += counts.states;
    this.stats.stored.events += counts.events;
    this.stats.stored.online += counts.online;
    this.stats.stored.unknownDevices += counts.unknownDevices;
    (this.onStored ?? this.options.onStored)?.(batch, counts);
  }
}
