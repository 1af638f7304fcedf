import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceEvent, StateReport } from '@podfleet/shared';
import { PublishRefused } from '../session/device-link.js';
import { MemoryLink } from '../session/memory-link.js';
import { FileOutboxStore } from './file-outbox-store.js';
import { Outbox } from './outbox.js';
import { MemoryOutboxStore, type OutboxStore } from './outbox-store.js';

const EVENTS = 'pf/v1/dev/dev-1/events';
const STATE = 'pf/v1/dev/dev-1/state';

function event(n: number): DeviceEvent {
  return {
    id: randomUUID(),
    device: 'dev-1',
    at: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    type: 'error',
    message: `event ${n}`,
  };
}

function state(generation: number): StateReport {
  return {
    device: 'dev-1',
    generation,
    reportedAt: '2026-01-01T00:00:00.000Z',
    agent: { version: '0.1.0' },
    host: { podman: '5.4.2', systemd: '257', arch: 'amd64', unitStyle: 'quadlet' },
    services: [],
  };
}

const messages = (link: MemoryLink) =>
  link.published<DeviceEvent>(EVENTS).map((e) => (e.type === 'error' ? e.message : e.type));

async function openOutbox(store: OutboxStore, link: MemoryLink, limits = {}) {
  const outbox = new Outbox(store, link, limits);
  await outbox.open();
  return outbox;
}

describe('Outbox', () => {
  it('keeps messages until the PUBACK and sends them in order once connected', async () => {
    const store = new MemoryOutboxStore();
    const link = new MemoryLink('dev-1');
    const outbox = await openOutbox(store, link);
    for (let n = 1; n <= 3; n++) await outbox.enqueueEvent(event(n));
    expect(store.size).toBe(3); // kept before any attempt to send
    expect(link.delivered).toEqual([]);

    link.connect();
    await outbox.drained();
    expect(messages(link)).toEqual(['event 1', 'event 2', 'event 3']);
    expect(store.size).toBe(0);
    expect(outbox.stats()).toMatchObject({ waiting: 0, inFlight: 0, delivered: 3 });
  });

  it('keeps only the newest state report waiting, retained', async () => {
    const store = new MemoryOutboxStore();
    const link = new MemoryLink('dev-1');
    const outbox = await openOutbox(store, link);
    await outbox.enqueueState(state(1));
    await outbox.enqueueEvent(event(1));
    await outbox.enqueueState(state(2));
    await outbox.enqueueState(state(3));
    expect(store.size).toBe(2);
    link.connect();
    await outbox.drained();
    expect(link.published<StateReport>(STATE).map((r) => r.generation)).toEqual([3]);
    expect(link.retained.get(STATE)).toContain('"generation":3');
  });

  it('never sends an older state report after a newer one', async () => {
    const link = new MemoryLink('dev-1');
    link.autoAck = false;
    const outbox = await openOutbox(new MemoryOutboxStore(), link);
    link.connect();
    await outbox.enqueueState(state(1)); // in flight
    await outbox.enqueueState(state(2)); // in flight behind it
    link.abandonInFlight(); // both lost with the session
    await new Promise((resolve) => setImmediate(resolve));
    link.autoAck = true;
    link.disconnect();
    link.connect();
    await outbox.drained();
    expect(link.published<StateReport>(STATE).map((r) => r.generation)).toEqual([2]);
  });

  it('drops the oldest state reports first, events only over the hard cap, and counts it', async () => {
    const link = new MemoryLink('dev-1');
    const outbox = await openOutbox(new MemoryOutboxStore(), link, { limit: 3, eventCap: 4 });
    await outbox.enqueueState(state(1));
    for (let n = 1; n <= 3; n++) await outbox.enqueueEvent(event(n));
    expect(outbox.stats()).toMatchObject({ waiting: 3, droppedStates: 1, droppedEvents: 0 });
    for (let n = 4; n <= 6; n++) await outbox.enqueueEvent(event(n));
    expect(outbox.stats()).toMatchObject({ waiting: 4, droppedStates: 1, droppedEvents: 2 });
    expect(outbox.takeDrops()).toEqual({ events: 2, states: 1 });
    expect(outbox.takeDrops()).toEqual({ events: 0, states: 0 });
    link.connect();
    await outbox.drained();
    expect(messages(link)).toEqual(['event 3', 'event 4', 'event 5', 'event 6']);
  });

  it('drops a message the broker refuses instead of resending it forever', async () => {
    const link = new MemoryLink('dev-1');
    link.connect();
    const refusing = Object.assign(Object.create(link) as MemoryLink, {
      publish: () => Promise.reject(new PublishRefused('Publish error: Not authorized', 135)),
    });
    const outbox = await openOutbox(new MemoryOutboxStore(), refusing);
    await outbox.enqueueEvent(event(1));
    await outbox.drained();
    expect(outbox.stats()).toMatchObject({ refused: 1, waiting: 0 });
  });

  it('loses nothing when the connection dies mid-stream and the agent restarts', async () => {
    const store = new MemoryOutboxStore();
    const first = new MemoryLink('dev-1');
    first.autoAck = false;
    const outbox = await openOutbox(store, first, { window: 5 });
    first.connect();
    const sent = Array.from({ length: 30 }, (_, n) => event(n + 1));
    for (const e of sent.slice(0, 20)) await outbox.enqueueEvent(e);
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    first.ack(5);
    await settle();
    first.ack(2); // seven acknowledged, the window refilled behind them
    await settle();
    expect(first.inFlightCount).toBe(5);
    // The process dies: the five in flight reached the broker, their PUBACKs did not come back.
    for (const e of sent.slice(20)) await outbox.enqueueEvent(e);
    first.abandonInFlight(true);
    outbox.close();

    const second = new MemoryLink('dev-1');
    const restarted = await openOutbox(store, second);
    second.connect();
    await restarted.drained();
    const ids = [...first.delivered, ...second.delivered].map(
      (m) => (JSON.parse(m.payload) as DeviceEvent).id,
    );
    expect(new Set(ids)).toEqual(new Set(sent.map((e) => e.id))); // every event arrived
    expect(ids.length - new Set(ids).size).toBe(5); // at least once: only those in flight twice
    // And in order, per connection.
    expect(second.delivered.map((m) => (JSON.parse(m.payload) as DeviceEvent).id)).toEqual(
      sent.slice(7).map((e) => e.id),
    );
  });
});

describe('FileOutboxStore', () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), 'podfleet-outbox-'));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('keeps messages across a restart of the agent process, in order, and forgets acked ones', async () => {
    const link = new MemoryLink('dev-1');
    const outbox = await openOutbox(new FileOutboxStore(directory), link);
    for (let n = 1; n <= 3; n++) await outbox.enqueueEvent(event(n));
    await outbox.enqueueState(state(7));
    expect(await readdir(join(directory, 'outbox'))).toEqual([
      '000000000001.json',
      '000000000002.json',
      '000000000003.json',
      '000000000004.json',
    ]);
    outbox.close();

    const again = new MemoryLink('dev-1');
    const reopened = await openOutbox(new FileOutboxStore(directory), again);
    await reopened.enqueueEvent(event(4)); // numbered after what was kept
    again.connect();
    await reopened.drained();
    expect(messages(again)).toEqual(['event 1', 'event 2', 'event 3', 'event 4']);
    expect(again.published<StateReport>(STATE)).toMatchObject([{ generation: 7 }]);
    expect(await readdir(join(directory, 'outbox'))).toEqual([]);
  });

  it('sets an unreadable message aside instead of refusing to start', async () => {
    const store = new FileOutboxStore(directory);
    await store.append({ seq: 1, kind: 'event', topic: EVENTS, payload: '{}', retain: false });
    await writeFile(join(directory, 'outbox', '000000000002.json'), '{"seq": 2, "kind"');
    const problems: string[] = [];
    const entries = await new FileOutboxStore(directory, (path) => problems.push(path)).load();
    expect(entries.map((e) => e.seq)).toEqual([1]);
    expect(problems).toEqual([join(directory, 'outbox', '000000000002.json')]);
    expect(await readdir(join(directory, 'outbox'))).toContain('000000000002.json.corrupt');
  });
});
