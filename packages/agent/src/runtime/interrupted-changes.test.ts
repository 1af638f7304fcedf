// Power cuts in the middle of an apply and of an auto-update, on the memory host: the agent
// process dies at a chosen call, systemd boots from the files on disk, and a new agent starts on
// the same state directory. The device/lab version of these is power-loss.int.test.ts.
import { describe, expect, it } from 'vitest';
import type { ServiceSpecInput } from '@podfleet/shared';
import { memoryDevice, signedManifest } from './testing.js';

const V1 = 'registry.example/acme/web:1';
const V2 = 'registry.example/acme/web:2';
const web = (image: string, extra: Partial<ServiceSpecInput> = {}): ServiceSpecInput => ({
  name: 'web',
  image,
  ready: { timeout: 30, settle: 10 },
  ...extra,
});

async function runningV1(spec = web(V1)) {
  const dev = memoryDevice();
  const v1 = dev.host.images.push(spec.image);
  await dev.start();
  await dev.desire(signedManifest(dev.device, 1, [spec]));
  return { dev, v1 };
}

type Dev = ReturnType<typeof memoryDevice>;

const lastApply = (dev: Dev) =>
  dev
    .events()
    .filter((e) => e.type === 'apply')
    .at(-1);

/**
 * Generation 2 (web on V2) goes out; the power is cut when the agent calls `method` on the host;
 * the device boots and its agent takes the retained manifest again.
 */
async function applyV2CutAt(dev: Dev, method: 'pullImage' | 'daemonReload' | 'restart') {
  const manifest = signedManifest(dev.device, 2, [web(V2)]);
  dev.link.deliverDesired(JSON.stringify(manifest));
  await dev.clock.run(dev.cutPowerAt(method));
  await dev.boot();
  const booted = await dev.host.unitStatus('web.service');
  await dev.desire(manifest); // the retained manifest, after the connection
  return booted;
}

/** Over `ms` of device time: the unit's NRestarts never moves and every report is ready. */
async function staysUp(dev: Dev, ms = 60_000) {
  const before = await dev.host.unitStatus('web.service');
  await dev.clock.advance(ms);
  const after = await dev.host.unitStatus('web.service');
  expect(after).toMatchObject({ active: 'active', restarts: before.restarts });
  expect(after.mainPid).toBe(before.mainPid);
  return after;
}

describe('power cut during an auto-update, then boot', () => {
  const auto = web(V1, { autoUpdate: 'registry' });

  it('rolls an image that crashes after start back at start, and the device stays on V1 (issue 15)', async () => {
    const { dev, v1 } = await runningV1(auto);
    const bad = dev.host.images.push(V1, { crashAfterMs: 3_000 });
    dev.link.deliverCommand(JSON.stringify({ id: 'u1', type: 'auto-update' }));
    await dev.clock.advance(1_000); // Podman restarted it on the new image; the gate is watching
    expect((await dev.host.unitStatus('web.service')).container?.imageId).toBe(bad);
    await dev.cutPowerAt();
    await dev.boot();
    await dev.clock.run(dev.agent.idle());

    const rollback = dev.events().find((e) => e.type === 'rollback');
    expect(rollback).toMatchObject({
      trigger: 'auto-update',
      fromImage: `${V1} (${bad.slice(0, 12)})`,
      toImage: `${V1} (${v1.slice(0, 12)})`,
      restored: true,
      failure: { reason: 'crashed-after-start' },
    });
    expect(await dev.store.listBackups()).toEqual([]);
    const running = await staysUp(dev);
    expect(running.container?.imageId).toBe(v1);
    const digest = await dev.host.imageDigest(bad);
    expect(dev.states().at(-1)?.services[0]).toMatchObject({
      ready: true,
      health: 'ready',
      imageId: v1,
      rejected: { image: V1, imageId: bad, digest },
    });
  });

  it('keeps a good image that systemd started at boot, without restarting it', async () => {
    const { dev } = await runningV1(auto);
    const good = dev.host.images.push(V1);
    dev.link.deliverCommand(JSON.stringify({ id: 'u1', type: 'auto-update' }));
    await dev.clock.advance(1_000);
    await dev.cutPowerAt();
    await dev.boot();
    const booted = await dev.host.unitStatus('web.service');
    expect(booted.container?.imageId).toBe(good);
    await dev.clock.run(dev.agent.idle());

    expect(dev.events().filter((e) => e.type === 'rollback')).toEqual([]);
    expect((await dev.store.loadApplied())?.services[0]).toMatchObject({
      imageId: good,
      previous: { origin: 'auto-update' },
    });
    expect((await staysUp(dev)).mainPid).toBe(booted.mainPid);
  });
});

describe('power cut during an apply, then boot', () => {
  it('after daemon-reload: the new version systemd started at boot is recorded, not restarted', async () => {
    const { dev } = await runningV1();
    const v2 = dev.host.images.push(V2);
    const booted = await applyV2CutAt(dev, 'restart');
    expect(booted.container?.imageId).toBe(v2);

    expect(lastApply(dev)).toMatchObject({
      generation: 2,
      result: 'applied',
    });
    expect((await staysUp(dev)).mainPid).toBe(booted.mainPid);
    expect(await dev.store.listBackups()).toEqual([]);
  });

  it('before daemon-reload, on a host where nothing reloaded: the change finishes once', async () => {
    const { dev } = await runningV1();
    const v2 = dev.host.images.push(V2);
    await applyV2CutAt(dev, 'daemonReload');
    expect((await staysUp(dev)).container?.imageId).toBe(v2);
    expect(lastApply(dev)).toMatchObject({
      generation: 2,
      result: 'applied',
    });
  });

  it('during the gate of a crashing version: rolled back at start, and generation 2 reports failed', async () => {
    const { dev, v1 } = await runningV1();
    dev.host.images.push(V2, { crashAfterMs: 3_000 });
    const manifest = signedManifest(dev.device, 2, [web(V2)]);
    dev.link.deliverDesired(JSON.stringify(manifest));
    await dev.clock.advance(1_000);
    await dev.cutPowerAt();
    await dev.boot();
    await dev.desire(manifest);

    expect(dev.events().filter((e) => e.type === 'rollback')).toMatchObject([
      { trigger: 'apply', generation: 2, fromImage: V2, toImage: V1, restored: true },
    ]);
    expect(lastApply(dev)).toMatchObject({
      generation: 2,
      result: 'failed',
      services: [{ name: 'web', image: V1, action: 'kept' }],
    });
    expect((await staysUp(dev)).container?.imageId).toBe(v1);
    // The drift check keeps the last good version: the failed change is not tried again.
    expect(dev.events().filter((e) => e.type === 'rollback')).toHaveLength(1);
  });

  it('at the pull: no backup yet, V1 untouched, the next reconcile does the change', async () => {
    const { dev } = await runningV1();
    const v2 = dev.host.images.push(V2);
    await applyV2CutAt(dev, 'pullImage');
    expect((await staysUp(dev)).container?.imageId).toBe(v2);
  });
});
