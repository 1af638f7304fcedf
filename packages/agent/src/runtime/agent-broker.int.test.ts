import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CommandResponse,
  DeviceEvent,
  StateReport,
  topics,
  type ServiceSpecInput,
} from '@podfleet/shared';
import { systemClock } from '../clock/clock.js';
import { MemoryHost } from '../host/memory-host.js';
import { FileOutboxStore } from '../outbox/file-outbox-store.js';
import { Outbox } from '../outbox/outbox.js';
import { DeviceSession } from '../session/device-session.js';
import { BrokerWatch, TcpCut, TEST_BROKER, uniqueDeviceId } from '../session/testing.js';
import { FileStateStore } from '../state/file-state-store.js';
import type { StateStore } from '../state/state-store.js';
import { DeviceAgent } from './device-agent.js';
import { controllerKey, signedManifest } from './testing.js';

const V1 = 'registry.example/acme/web:1';
const V2 = 'registry.example/acme/web:2';
const web = (image: string): ServiceSpecInput => ({
  name: 'web',
  image,
  ready: { timeout: 10, settle: 1 },
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The real agent, session and file outbox, on a memory host: one device process. */
async function startAgent(options: {
  device: string;
  url?: string;
  host: MemoryHost;
  store: StateStore;
  stateDir: string;
}) {
  const session = new DeviceSession({
    device: options.device,
    url: options.url ?? TEST_BROKER,
    sessionExpirySeconds: 120,
    backoff: { baseMs: 200, capMs: 1000 },
  });
  const outbox = new Outbox(new FileOutboxStore(options.stateDir), session);
  const agent = new DeviceAgent({
    device: options.device,
    trustedKeys: [controllerKey.publicKeyPem],
    driver: options.host,
    store: options.store,
    link: session,
    outbox,
    clock: systemClock,
    pollMs: 100,
  });
  await outbox.open();
  await agent.start();
  session.start();
  const stop = async () => {
    agent.stop();
    outbox.close();
    await session.stop();
  };
  cleanups.push(stop);
  return { session, outbox, agent, stop };
}

async function newDevice() {
  const device = uniqueDeviceId();
  const stateDir = await mkdtemp(join(tmpdir(), 'podfleet-agent-'));
  const host = new MemoryHost({ clock: systemClock, name: device });
  host.images.push(V1);
  const store = new FileStateStore(stateDir);
  const watch = await BrokerWatch.open([`pf/v1/dev/${device}/#`]);
  cleanups.push(async () => {
    await watch.clearDevices([device]);
    await watch.close();
    await rm(stateDir, { recursive: true, force: true });
  });
  const events = () => watch.json<unknown>(topics.events(device)).map((e) => DeviceEvent.parse(e));
  const states = () => watch.json<unknown>(topics.state(device)).map((s) => StateReport.parse(s));
  const online = () =>
    watch.seen.filter((m) => m.topic === topics.online(device)).map((m) => m.payload);
  return { device, stateDir, host, store, watch, events, states, online };
}

async function poll(what: string, check: () => Promise<boolean | undefined>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the agent against Mosquitto', () => {
  it('applies the retained manifest published before it connected, and reports', async () => {
    const dev = await newDevice();
    const manifest = signedManifest(dev.device, 1, [web(V1)]);
    await dev.watch.publish(topics.desired(dev.device), JSON.stringify(manifest), true);
    await startAgent(dev);

    const state = await dev.watch.until('state generation 1', () =>
      dev.states().find((s) => s.generation === 1),
    );
    expect(state.services).toMatchObject([{ name: 'web', image: V1, ready: true }]);
    expect(dev.events()).toMatchObject([
      { type: 'apply', generation: 1, result: 'applied', device: dev.device },
    ]);
    expect(dev.online()).toContain('online');
    // State and online are retained: a controller starting now still sees them.
    const late = await BrokerWatch.open([topics.state(dev.device), topics.online(dev.device)]);
    cleanups.push(() => late.close());
    await late.until('retained state', () =>
      late.seen.find((m) => m.topic === topics.state(dev.device) && m.retain),
    );
    expect(late.seen.find((m) => m.topic === topics.online(dev.device))).toMatchObject({
      payload: 'online',
      retain: true,
    });
  });

  it('rejects a replayed older manifest with an event and keeps running the newer one', async () => {
    const dev = await newDevice();
    dev.host.images.push(V2);
    await startAgent(dev);
    const second = signedManifest(dev.device, 2, [web(V2)]);
    await dev.watch.publish(topics.desired(dev.device), JSON.stringify(second), true);
    await dev.watch.until('generation 2', () => dev.states().find((s) => s.generation === 2));
    const replay = signedManifest(dev.device, 1, [web(V1)]);
    await dev.watch.publish(topics.desired(dev.device), JSON.stringify(replay), true);

    const rejected = await dev.watch.until('rejection', () =>
      dev.events().find((e) => e.type === 'apply' && e.result === 'rejected'),
    );
    expect(rejected).toMatchObject({
      generation: 1,
      reason: 'generation 1 is not newer than applied generation 2',
    });
    expect((await dev.host.unitStatus('web.service')).container?.imageId).toBe(
      await dev.host.imageId(V2),
    );
  });

  it('has the broker say offline (its last will) when the socket dies, then online again', async () => {
    const dev = await newDevice();
    const { session } = await startAgent(dev);
    await dev.watch.until('online', () => (session.connected ? true : undefined));
    session.dropConnection();
    await dev.watch.until('offline', () => (dev.online().includes('offline') ? true : undefined));
    await dev.watch.until('online again', () =>
      dev.online().lastIndexOf('online') > dev.online().indexOf('offline') ? true : undefined,
    );
    expect(dev.online().slice(-2)).toEqual(['offline', 'online']);
  });

  it('gets a command sent while it was offline (persistent session) and answers it', async () => {
    const dev = await newDevice();
    const manifest = signedManifest(dev.device, 1, [web(V1)]);
    await dev.watch.publish(topics.desired(dev.device), JSON.stringify(manifest), true);
    const { session } = await startAgent(dev);
    await dev.watch.until('applied', () => dev.states().find((s) => s.generation === 1));
    session.suspend();
    await dev.watch.until('offline', () => (dev.online().includes('offline') ? true : undefined));
    const request = { id: 'logs-1', type: 'logs', service: 'web', lines: 5 };
    await dev.watch.publish(topics.cmd(dev.device), JSON.stringify(request));
    session.resume();
    const answer = await dev.watch.until(
      'answer',
      () =>
        dev.watch
          .json<unknown>(topics.cmdResult(dev.device))
          .map((r) => CommandResponse.parse(r))[0],
    );
    expect(answer).toMatchObject({
      id: 'logs-1',
      ok: true,
      result: { type: 'logs', service: 'web' },
    });
  });

  it('keeps events through a network outage and an agent restart, and delivers them after', async () => {
    const dev = await newDevice();
    dev.host.images.push(V2);
    const relay = await TcpCut.start();
    cleanups.push(() => relay.close());
    const first = await startAgent({ ...dev, url: relay.url });
    await dev.watch.publish(
      topics.desired(dev.device),
      JSON.stringify(signedManifest(dev.device, 1, [web(V1)])),
      true,
    );
    await dev.watch.until('generation 1', () => dev.states().find((s) => s.generation === 1));

    // Generation 2 arrives; the network goes while the agent is in its health gate.
    await dev.watch.publish(
      topics.desired(dev.device),
      JSON.stringify(signedManifest(dev.device, 2, [web(V2)])),
      true,
    );
    await poll('the new unit written', async () =>
      (await dev.host.readUnitFile('quadlet', 'web.container'))?.contents.includes(V2),
    );
    relay.cut();
    await dev.watch.until('offline', () => (dev.online().includes('offline') ? true : undefined));
    await first.agent.idle();
    expect(first.outbox.stats().waiting).toBeGreaterThanOrEqual(2); // the apply event + state
    expect(dev.events().filter((e) => e.type === 'apply' && e.generation === 2)).toEqual([]);

    // The agent process restarts while the network is still down, then the network returns.
    await first.stop();
    await startAgent({ ...dev, url: relay.url });
    relay.restore();
    const applied = await dev.watch.until('generation 2 applied', () =>
      dev.events().find((e) => e.type === 'apply' && e.generation === 2),
    );
    expect(applied).toMatchObject({ result: 'applied', services: [{ image: V2 }] });
    await dev.watch.until('state generation 2', () => dev.states().find((s) => s.generation === 2));
    const ids = dev.events().map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length); // nothing was in flight at the cut: no repeats
  });
});
