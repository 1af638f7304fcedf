import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock/clock.js';
import { MemoryHost } from '../host/memory-host.js';
import { Outbox } from '../outbox/outbox.js';
import { MemoryOutboxStore } from '../outbox/outbox-store.js';
import { MemoryLink } from '../session/memory-link.js';
import { MemoryStateStore } from '../state/state-store.js';
import {
  AgentUnit,
  awaitFirstReconcile,
  statusLine,
  type FirstReconcileOptions,
} from './agent-unit.js';
import { DeviceAgent, type AgentObserver } from './device-agent.js';
import { SdNotify, type NotifySend } from './sd-notify.js';
import { controllerKey, signedManifest } from './testing.js';

const GRACE = 30_000;
const QUIET = 3_000;
const IMAGE = 'registry.example/acme/web:1';

/** An agent on a MemoryHost, started as startDeviceAgent does; its link not yet connected. */
async function memoryAgent(observer?: AgentObserver) {
  const device = 'dev-1';
  const clock = new VirtualClock();
  const host = new MemoryHost({ clock, name: device });
  host.images.push(IMAGE);
  const link = new MemoryLink(device);
  const outbox = new Outbox(new MemoryOutboxStore(), link);
  const agent = new DeviceAgent({
    device,
    trustedKeys: [controllerKey.publicKeyPem],
    driver: host,
    store: new MemoryStateStore(),
    link,
    outbox,
    clock,
    settle: 1,
    intervals: { reportMs: 3_600_000, driftMs: 3_600_000, autoUpdateMs: undefined },
    ...(observer ? { observer } : {}),
  });
  await outbox.open();
  await agent.start();
  return { device, clock, host, link, agent };
}

/** The agent started and the readiness wait begun. */
async function started(options: Partial<FirstReconcileOptions> = {}) {
  const dev = await memoryAgent();
  const waited = awaitFirstReconcile(dev.link, dev.agent, {
    clock: dev.clock,
    graceMs: GRACE,
    quietMs: QUIET,
    ...options,
  });
  return { dev, waited };
}

describe('awaitFirstReconcile', () => {
  it('resolves once the retained manifest that follows the connection is applied', async () => {
    const { dev, waited } = await started();
    await dev.clock.advance(2_000);
    dev.link.connect();
    const manifest = signedManifest(dev.device, 1, [{ name: 'web', image: IMAGE }]);
    dev.link.deliverDesired(JSON.stringify(manifest));
    const startedAt = dev.clock.now();
    expect(await dev.clock.run(waited)).toBe('reconciled');
    // The apply (start, then the 1 s settle) came first.
    expect(dev.clock.now() - startedAt).toBeGreaterThanOrEqual(1_000);
    expect((await dev.host.unitStatus('web.service')).active).toBe('active');
  });

  it('says no-manifest after a quiet spell when the broker holds none for the device', async () => {
    const { dev, waited } = await started();
    dev.link.connect();
    const connectedAt = dev.clock.now();
    expect(await dev.clock.run(waited)).toBe('no-manifest');
    expect(dev.clock.now() - connectedAt).toBe(QUIET);
  });

  it('gives up waiting at the grace when the broker is out of reach', async () => {
    const { dev, waited } = await started();
    const t0 = dev.clock.now();
    expect(await dev.clock.run(waited)).toBe('offline');
    expect(dev.clock.now() - t0).toBe(GRACE);
    // Nothing of the wait is left behind: the agent's own timers only.
    dev.agent.stop();
    expect(dev.clock.pending()).toBe(0);
  });

  it('says busy when the first reconcile outlasts the grace', async () => {
    const link = new MemoryLink('dev-1');
    const clock = new VirtualClock();
    const never = { idle: () => new Promise<void>(() => undefined) };
    const waited = awaitFirstReconcile(link, never, { clock, graceMs: GRACE, quietMs: QUIET });
    link.connect();
    link.deliverDesired('{}');
    expect(await clock.run(waited)).toBe('busy');
    expect(clock.now()).toBe(new VirtualClock().now() + GRACE);
  });

  it('stops waiting when the agent is asked to stop', async () => {
    const stop = new AbortController();
    const { dev, waited } = await started({ signal: stop.signal });
    await dev.clock.advance(1_000);
    stop.abort();
    expect(await dev.clock.run(waited)).toBe('stopped');
  });
});

describe('statusLine', () => {
  const broker = 'mqtt://broker.example:1883';
  it('says where the agent is and what the device runs', () => {
    expect(statusLine({ phase: 'starting', online: false, broker })).toBe(
      'starting: connecting to mqtt://broker.example:1883; reading the host',
    );
    expect(
      statusLine({
        phase: 'running',
        online: true,
        broker,
        generation: 3,
        services: { ready: 2, total: 3 },
      }),
    ).toBe('online (mqtt://broker.example:1883); generation 3, 2/3 services ready');
    expect(statusLine({ phase: 'running', online: false, broker, generation: 0 })).toBe(
      'offline, retrying mqtt://broker.example:1883; no manifest applied yet',
    );
    expect(statusLine({ phase: 'stopping', online: true, broker })).toBe(
      'stopping: saying offline, closing the session',
    );
  });
});

describe('AgentUnit', () => {
  it('sends READY=1 after the first reconcile, then the status as it changes, then STOPPING=1', async () => {
    const messages: string[][] = [];
    const send = (): NotifySend => async (fields) => void messages.push([...fields]);
    const notify = SdNotify.fromEnvironment({ NOTIFY_SOCKET: '/run/n' }, { send });
    const unit = new AgentUnit(notify, 'mqtt://user:secret@broker.example:1883');
    const dev = await memoryAgent(unit.observer);
    const ready = unit.started(dev.link, dev.agent, { clock: dev.clock, quietMs: QUIET });
    dev.link.connect();
    expect(await dev.clock.run(ready)).toBe('no-manifest');
    dev.link.disconnect();
    await dev.clock.advance(0);
    await unit.stopping();
    dev.agent.stop();
    expect(messages).toEqual([
      ['STATUS=starting: connecting to mqtt://broker.example:1883; reading the host'],
      ['STATUS=starting: connecting to mqtt://broker.example:1883; no manifest applied yet'],
      ['STATUS=starting: online (mqtt://broker.example:1883); no manifest applied yet'],
      ['READY=1', 'STATUS=online (mqtt://broker.example:1883); no manifest applied yet'],
      ['STATUS=offline, retrying mqtt://broker.example:1883; no manifest applied yet'],
      ['STOPPING=1', 'STATUS=stopping: saying offline, closing the session'],
    ]);
  });
});
