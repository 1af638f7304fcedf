import type { Logger } from 'pino';
import { clipDeviceEvent, topics, type DeviceEvent, type StateReport } from '@podfleet/shared';
import { PublishRefused, type DeviceLink } from '../session/device-link.js';
import type { OutboxEntry, OutboxStore } from './outbox-store.js';

export interface OutboxLimits {
  /** Messages kept; beyond it the oldest state reports waiting are dropped. */
  limit: number;
  /** Events kept at most (the hard cap); beyond it the oldest events waiting are dropped. */
  eventCap: number;
  /** Publishes in flight at once (under Mosquitto's default receive maximum of 20). */
  window: number;
}

export interface OutboxStats {
  waiting: number;
  inFlight: number;
  delivered: number;
  droppedEvents: number;
  droppedStates: number;
  /** Messages the broker refused (ACL, size): dropped, resending cannot help. */
  refused: number;
}

interface Slot {
  entry: OutboxEntry;
  inFlight: boolean;
}

const RETRY_MS = 1000;
const DEFAULT_LIMITS: OutboxLimits = { limit: 1000, eventCap: 10_000, window: 10 };

/**
 * Events and state reports on their way to the broker. Each is kept in the store before it is
 * sent and forgotten after its PUBACK, so an agent restart or a broker outage loses none; what
 * was in flight at a crash is sent again (at least once: events carry ids). Messages go out in
 * the order they came. State reports are retained and only the latest matters: a newer one
 * replaces an older one still waiting.
 */
export class Outbox {
  private slots: Slot[] = [];
  private nextSeq = 1;
  private writes: Promise<void> = Promise.resolve();
  private opened = false;
  private readonly limits: OutboxLimits;
  private readonly counters = { delivered: 0, droppedEvents: 0, droppedStates: 0, refused: 0 };
  private unreported = { events: 0, states: 0 };
  private drainWaiters: Array<() => void> = [];
  private removing = 0;
  private readonly pumpOnUp = () => this.pump();

  constructor(
    private readonly store: OutboxStore,
    private readonly link: DeviceLink,
    limits: Partial<OutboxLimits> = {},
    private readonly logger?: Logger,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Loads what an earlier run left and starts sending whenever the link is up. */
  async open(): Promise<void> {
    const kept = await this.store.load();
    this.slots = kept.map((entry) => ({ entry, inFlight: false }));
    this.nextSeq = (kept.at(-1)?.seq ?? 0) + 1;
    this.opened = true;
    this.link.on('up', this.pumpOnUp);
    if (kept.length > 0) this.logger?.info(`outbox: ${kept.length} message(s) from before`);
    await this.coalesce();
    this.pump();
  }

  /** Stops sending; what is kept stays in the store for the next open(). */
  close(): void {
    this.opened = false;
    this.link.off('up', this.pumpOnUp);
  }

  /** The event goes out with its free text clipped to what the controller accepts. */
  enqueueEvent(event: DeviceEvent): Promise<void> {
    const payload = JSON.stringify(clipDeviceEvent(event));
    return this.add({ kind: 'event', topic: topics.events(event.device), payload, retain: false });
  }

  enqueueState(report: StateReport): Promise<void> {
    const payload = JSON.stringify(report);
    return this.add({ kind: 'state', topic: topics.state(report.device), payload, retain: true });
  }

  stats(): OutboxStats {
    return {
      waiting: this.slots.filter((slot) => !slot.inFlight).length,
      inFlight: this.slots.filter((slot) => slot.inFlight).length,
      ...this.counters,
    };
  }

  /** Drops since the last call, for an error event once the broker can hear it. */
  takeDrops(): { events: number; states: number } {
    const drops = this.unreported;
    this.unreported = { events: 0, states: 0 };
    return drops;
  }

  /** Resolves once every message is acknowledged. */
  drained(): Promise<void> {
    return this.writes.then(() =>
      this.slots.length === 0 && this.removing === 0
        ? undefined
        : new Promise<void>((resolve) => this.drainWaiters.push(resolve)),
    );
  }

  private add(fields: Omit<OutboxEntry, 'seq'>): Promise<void> {
    const added = this.writes.then(async () => {
      const entry: OutboxEntry = { seq: this.nextSeq++, ...fields };
      try {
        await this.store.append(entry);
      } catch (error) {
        // Sending it unsaved beats losing it: only a crash before the PUBACK loses it now.
        this.logger?.error(`outbox: cannot keep message ${entry.seq}: ${(error as Error).message}`);
      }
      this.slots.push({ entry, inFlight: false });
      if (entry.kind === 'state') await this.coalesce();
      await this.enforceLimits();
      this.pump();
    });
    this.writes = added.catch(() => undefined);
    return added;
  }

  /** Only the newest state report waiting is worth sending. */
  private async coalesce(): Promise<void> {
    const states = this.slots.filter((slot) => slot.entry.kind === 'state');
    for (const stale of states.slice(0, -1).filter((slot) => !slot.inFlight)) {
      await this.forget(stale);
    }
  }

  private async enforceLimits(): Promise<void> {
    const { limit, eventCap } = this.limits;
    while (this.slots.length > limit) {
      const oldest = this.slots.find((slot) => slot.entry.kind === 'state' && !slot.inFlight);
      if (!oldest) break;
      await this.forget(oldest);
      this.counters.droppedStates++;
      this.unreported.states++;
    }
    let events = this.slots.filter((slot) => slot.entry.kind === 'event').length;
    while (events > eventCap) {
      const oldest = this.slots.find((slot) => slot.entry.kind === 'event' && !slot.inFlight);
      if (!oldest) break;
      await this.forget(oldest);
      events--;
      this.counters.droppedEvents++;
      this.unreported.events++;
      this.logger?.warn(
        `outbox: over ${eventCap} events, dropped the oldest (${oldest.entry.seq})`,
      );
    }
  }

  private pump(): void {
    if (!this.opened || !this.link.connected) return;
    let inFlight = this.slots.filter((slot) => slot.inFlight).length;
    for (const slot of this.slots) {
      if (inFlight >= this.limits.window) break;
      if (slot.inFlight) continue;
      slot.inFlight = true;
      inFlight++;
      const { topic, payload, retain } = slot.entry;
      this.link.publish(topic, payload, { retain }).then(
        () => this.acknowledged(slot),
        (error: Error) => this.unsent(slot, error),
      );
    }
  }

  private async acknowledged(slot: Slot): Promise<void> {
    this.counters.delivered++;
    await this.forget(slot);
    this.pump();
  }

  private async unsent(slot: Slot, error: Error): Promise<void> {
    slot.inFlight = false;
    if (error instanceof PublishRefused) {
      this.counters.refused++;
      this.logger?.error(`outbox: broker refused ${slot.entry.topic}: ${error.message}`);
      await this.forget(slot);
      return;
    }
    if (slot.entry.kind === 'state') await this.coalesce();
    // Sent again on the next connect; if the link is up already, after a pause (never a spin).
    if (this.link.connected) setTimeout(() => this.pump(), RETRY_MS).unref();
  }

  private async forget(slot: Slot): Promise<void> {
    const index = this.slots.indexOf(slot);
    if (index < 0) return;
    this.slots.splice(index, 1);
    this.removing++;
    try {
      await this.store.remove(slot.entry.seq);
    } catch (error) {
      // It comes back after a restart and is sent again: at least once, never lost.
      this.logger?.warn(`outbox: cannot remove ${slot.entry.seq}: ${(error as Error).message}`);
    } finally {
      this.removing--;
    }
    if (this.slots.length === 0 && this.removing === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
