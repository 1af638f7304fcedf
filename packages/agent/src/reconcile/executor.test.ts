import { describe, expect, it } from 'vitest';
import {
  DeviceEvent,
  renderUnits,
  type DeviceManifest,
  type ServiceSpecInput,
} from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import type { HostDriver } from '../host/host-driver.js';
import { MemoryHost } from '../host/memory-host.js';
import { signedManifest } from '../runtime/testing.js';
import { MemoryStateStore } from '../state/state-store.js';
import { planSteps } from './planner.js';
import { reconcile, type ReconcileDeps } from './reconcile.js';
import { readHostSnapshot } from './snapshot.js';

const V1 = 'registry.example/acme/web:1';
const V2 = 'registry.example/acme/web:2';
const web = (image: string, extra: Partial<ServiceSpecInput> = {}): ServiceSpecInput => ({
  name: 'web',
  image,
  ready: { timeout: 30, settle: 15 },
  ...extra,
});

const manifest = (generation: number, services: ServiceSpecInput[]) =>
  signedManifest('dev-1', generation, services);

function device(podmanVersion = '4.3.1') {
  const clock = new VirtualClock();
  const host = new MemoryHost({ clock, podmanVersion });
  const store = new MemoryStateStore();
  const deps: ReconcileDeps = { driver: host, clock, store, device: 'dev-1' };
  const apply = (desired: DeviceManifest, driver: HostDriver = host) =>
    clock.run(reconcile(desired, { ...deps, driver }));
  return { clock, host, store, deps, apply };
}

/** A driver whose `method` never returns: the agent process died at that step. */
function dyingAt(host: MemoryHost, method: keyof HostDriver): HostDriver {
  return new Proxy(host, {
    get(target, property, receiver) {
      if (property === method) return () => new Promise(() => {});
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function runningV1(spec: ServiceSpecInput = web(V1)) {
  const dev = device();
  const v1 = dev.host.images.push(V1);
  const outcome = await dev.apply(manifest(1, [spec]));
  expect(outcome.result).toBe('applied');
  return { ...dev, v1 };
}

describe('executePlan on the memory host', () => {
  it('installs, gates and records a service; a second pass does nothing', async () => {
    const { clock, host, store, apply } = device();
    const v1 = host.images.push(V1);
    const started = clock.now();
    const outcome = await apply(manifest(1, [web(V1)]));

    expect(outcome.result).toBe('applied');
    expect(outcome.events).toHaveLength(1);
    expect(outcome.events[0]).toMatchObject({
      type: 'apply',
      device: 'dev-1',
      generation: 1,
      result: 'applied',
      services: [{ name: 'web', image: V1, action: 'installed' }],
    });
    // The gate waited for the settle period, not just for READY=1.
    expect(clock.now() - started).toBeGreaterThanOrEqual(15_000);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'active',
      fileState: 'enabled',
      container: { imageId: v1 },
    });
    expect((await store.loadApplied())?.services[0]).toMatchObject({ imageId: v1 });

    const again = await apply(manifest(1, [web(V1)]));
    expect(again.events).toEqual([]);
    const desired = manifest(2, [web(V1)]);
    const current = await readHostSnapshot(host, desired, await store.loadApplied());
    expect(planSteps(current, await store.loadApplied(), desired, { style: 'service' })).toEqual(
      [],
    );
  });

  it('rolls back an image that never sends READY=1 (--sdnotify=container)', async () => {
    const { host, store, apply, v1 } = await runningV1(web(V1, { notify: 'container' }));
    host.images.push(V2, { neverReady: true });
    const outcome = await apply(manifest(2, [web(V2, { notify: 'container' })]));

    expect(outcome.result).toBe('failed');
    const [rollback, applyEvent] = outcome.events;
    expect(rollback).toMatchObject({
      type: 'rollback',
      service: 'web',
      generation: 2,
      trigger: 'apply',
      fromImage: V2,
      toImage: V1,
      restored: true,
    });
    expect(rollback?.type === 'rollback' && rollback.reason).toMatch(
      /web\.service (not active within 30s|exited \(result: timeout\))/,
    );
    expect(applyEvent).toMatchObject({
      type: 'apply',
      result: 'failed',
      services: [{ name: 'web', image: V1, action: 'rolled back' }],
    });
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'active',
      container: { imageId: v1 },
    });
    const unit = await host.readUnitFile('systemd', 'web.service');
    expect(unit?.contents).toBe(
      renderUnits(web(V1, { notify: 'container' }), { style: 'service' })[0]!.contents,
    );
    const record = await store.loadApplied();
    expect(record?.services.map((s) => s.spec.image)).toEqual([V1]);
    expect(record?.failed).toMatchObject([{ name: 'web', generation: 2, image: V2 }]);
    // The retained manifest arrives again: the rolled-back change is not retried.
    expect((await apply(manifest(2, [web(V2, { notify: 'container' })]))).events).toEqual([]);
  });

  it('closes the Podman gap: a crash after READY under --sdnotify=conmon is rolled back by settle', async () => {
    const { host, apply, v1 } = await runningV1();
    host.images.push(V2, { crashAfterMs: 2_000 });
    const outcome = await apply(manifest(2, [web(V2)]));

    expect(outcome.result).toBe('failed');
    expect(outcome.events[0]).toMatchObject({
      type: 'rollback',
      fromImage: V2,
      toImage: V1,
      restored: true,
    });
    const reason = outcome.events[0]?.type === 'rollback' ? outcome.events[0].reason : '';
    expect(reason).toMatch(/web\.service (exited \(result: exit-code\)|restarted)/);
    // systemd did see READY=1 from the new version (what Podman's own check trusts) before the crash.
    const journal = (await host.journal('web.service', 100)).join('\n');
    expect(journal.match(/Started web\.service\./g)?.length).toBe(3);
    expect(journal).toContain('Main process exited, status=1');
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'active',
      container: { imageId: v1 },
    });
  });

  it('rolls back a container whose healthcheck turns unhealthy while the unit stays active', async () => {
    const health = { cmd: 'curl -fsS localhost/', interval: 5 };
    const { host, apply } = await runningV1(web(V1, { health }));
    host.images.push(V2, { unhealthy: true });
    const outcome = await apply(manifest(2, [web(V2, { health })]));
    expect(outcome.events[0]).toMatchObject({ type: 'rollback', restored: true });
    expect(outcome.events[0]?.type === 'rollback' && outcome.events[0].reason).toContain(
      'container unhealthy',
    );
  });

  it('leaves the old version running, untouched, when the new image cannot be pulled', async () => {
    const { host, store, apply, v1 } = await runningV1();
    const before = await host.unitStatus('web.service');
    host.images.push(V2);
    host.images.failPulls(V2);
    const outcome = await apply(manifest(2, [web(V2)]));

    expect(outcome.result).toBe('failed');
    expect(outcome.events.map((e) => e.type)).toEqual(['apply']);
    expect(outcome.events[0]).toMatchObject({
      result: 'failed',
      services: [{ name: 'web', image: V1, action: 'kept' }],
    });
    expect(outcome.events[0]?.type === 'apply' && outcome.events[0].reason).toContain(
      `web: pull ${V2}: `,
    );
    const after = await host.unitStatus('web.service');
    expect(after).toMatchObject({
      active: 'active',
      mainPid: before.mainPid,
      container: { imageId: v1 },
    });
    expect((await host.readUnitFile('systemd', 'web.service'))?.contents).toContain(V1);
    expect(await store.loadBackup('web')).toBeUndefined();

    // A pull failure is the network's fault, not the version's: the next pass tries again.
    host.images.failPulls(V2, false);
    const retry = await apply(manifest(2, [web(V2)]));
    expect(retry.result).toBe('applied');
    expect(retry.services).toEqual([{ name: 'web', image: V2, action: 'updated' }]);
  });

  it('emits events that satisfy the shared DeviceEvent contract', async () => {
    const { host, apply } = await runningV1();
    host.images.push(V2, { crashAfterMs: 1_000 });
    const outcome = await apply(manifest(2, [web(V2)]));
    expect(outcome.events).toHaveLength(2);
    for (const event of outcome.events) expect(DeviceEvent.parse(event)).toEqual(event);
    expect(new Set(outcome.events.map((e) => e.id)).size).toBe(2);
  });

  it('removes a failed fresh install and says nothing was restored', async () => {
    const { host, store, apply } = device();
    host.images.push(V1, { crashAfterMs: 100 });
    const outcome = await apply(manifest(1, [web(V1)]));
    expect(outcome.events[0]).toMatchObject({
      type: 'rollback',
      fromImage: V1,
      toImage: '',
      restored: false,
    });
    expect(await host.listUnitFiles()).toEqual([]);
    expect((await host.unitStatus('web.service')).fileState).toBe('not-found');
    expect((await store.loadApplied())?.services).toEqual([]);
  });

  it('finishes a change after the agent died between writing the unit and daemon-reload', async () => {
    const { clock, host, store, deps, apply, v1 } = await runningV1();
    const v2 = host.images.push(V2);
    void reconcile(manifest(2, [web(V2)]), { ...deps, driver: dyingAt(host, 'daemonReload') });
    await clock.advance(1_000);
    expect((await host.readUnitFile('systemd', 'web.service'))?.contents).toContain(V2);
    expect((await host.unitStatus('web.service')).container?.imageId).toBe(v1);
    expect(await store.loadBackup('web')).toMatchObject({ image: V1, imageId: v1 });

    // The agent restarts and reconciles the same (retained) manifest.
    const outcome = await apply(manifest(2, [web(V2)]));
    expect(outcome.result).toBe('applied');
    expect((await host.unitStatus('web.service')).container?.imageId).toBe(v2);
    expect(await store.loadBackup('web')).toBeUndefined();
  });

  it('rolls back to the version before the crash when the interrupted change turns out bad', async () => {
    const { clock, host, deps, apply, v1 } = await runningV1();
    host.images.push(V2, { crashAfterMs: 2_000 });
    void reconcile(manifest(2, [web(V2)]), { ...deps, driver: dyingAt(host, 'daemonReload') });
    await clock.advance(1_000);
    const outcome = await apply(manifest(2, [web(V2)]));
    expect(outcome.events[0]).toMatchObject({ type: 'rollback', toImage: V1, restored: true });
    expect((await host.unitStatus('web.service')).container?.imageId).toBe(v1);
  });

  it('updates the good service and rolls back the bad one in the same manifest', async () => {
    const api = (image: string) => ({ ...web(image), name: 'api' });
    const { host, apply } = device();
    host.images.push(V1);
    await apply(manifest(1, [web(V1), api(V1)]));
    host.images.push(V2);
    host.images.push('registry.example/acme/web:bad', { crashAfterMs: 1_000 });
    const outcome = await apply(manifest(2, [web(V2), api('registry.example/acme/web:bad')]));
    expect(outcome.result).toBe('failed');
    expect(outcome.services).toEqual([
      { name: 'web', image: V2, action: 'updated' },
      { name: 'api', image: V1, action: 'rolled back' },
    ]);
  });

  it('restores the service-style unit when the first Quadlet version after an upgrade fails', async () => {
    const { host, deps, clock, v1 } = await runningV1();
    host.images.push(V2, { crashAfterMs: 1_000 });
    const outcome = await clock.run(
      reconcile(manifest(2, [web(V2)]), { ...deps, style: 'quadlet' }),
    );
    expect(outcome.events[0]).toMatchObject({ type: 'rollback', toImage: V1, restored: true });
    expect((await host.listUnitFiles()).map((f) => `${f.kind}:${f.name}`)).toEqual([
      'systemd:web.service',
    ]);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'active',
      fileState: 'enabled',
      container: { imageId: v1 },
    });
    // A good version then moves it to Quadlet for good.
    host.images.push('registry.example/acme/web:3');
    const next = await clock.run(
      reconcile(manifest(3, [web('registry.example/acme/web:3')]), { ...deps, style: 'quadlet' }),
    );
    expect(next.result).toBe('applied');
    expect((await host.unitStatus('web.service')).fileState).toBe('generated');
  });

  it('stops and removes a service that left the manifest', async () => {
    const { host, store, apply } = await runningV1();
    host.images.push('registry.example/acme/db:3');
    const db = { name: 'db', image: 'registry.example/acme/db:3' };
    await apply(manifest(2, [web(V1), db]));
    const outcome = await apply(manifest(3, [db]));
    expect(outcome.services).toEqual([{ name: 'web', image: V1, action: 'removed' }]);
    expect((await host.unitStatus('web.service')).active).toBe('inactive');
    expect((await host.listUnitFiles()).map((f) => f.name)).toEqual(['db.service']);
    expect((await store.loadApplied())?.services.map((s) => s.spec.name)).toEqual(['db']);
  });

  it('installs Quadlet units on Podman ≥ 4.4 and socket units that start on a connection', async () => {
    const { clock, host, apply } = device('5.4.2');
    host.images.push(V1);
    const echo = { ...web(V1), name: 'echo', socket: { listen: ['127.0.0.1:18090'] } };
    const outcome = await apply(manifest(1, [web(V1), echo]));
    expect(outcome.result).toBe('applied');
    expect((await host.listUnitFiles()).map((f) => `${f.kind}:${f.name}`)).toEqual([
      'quadlet:echo.container',
      'quadlet:web.container',
      'systemd:echo.socket',
    ]);
    expect((await host.unitStatus('web.service')).fileState).toBe('generated');
    expect((await host.unitStatus('echo.service')).active).toBe('inactive');
    host.connect('echo.socket');
    await clock.advance(500);
    expect((await host.unitStatus('echo.service')).active).toBe('active');
  });
});
