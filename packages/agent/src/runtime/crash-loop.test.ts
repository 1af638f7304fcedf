// Health over time on the memory host: a crash loop is reported as one (never ready), rolls back
// to the good version before it once, and an image rolled back from stays rejected by
// auto-update until the tag moves on or the operator retries.
import { describe, expect, it } from 'vitest';
import type { ServiceSpecInput, StateReport } from '@podfleet/shared';
import { memoryDevice, signedManifest } from './testing.js';

const V1 = 'registry.example/acme/web:1';
const web = (extra: Partial<ServiceSpecInput> = {}): ServiceSpecInput => ({
  name: 'web',
  image: V1,
  autoUpdate: 'registry',
  ready: { timeout: 30, settle: 10 },
  ...extra,
});

type Dev = ReturnType<typeof memoryDevice>;

async function runningV1(spec = web()) {
  const dev = memoryDevice({ intervals: { reportMs: 5_000 } });
  const v1 = dev.host.images.push(spec.image);
  await dev.start();
  await dev.desire(signedManifest(dev.device, 1, [spec]));
  return { dev, v1 };
}

async function autoUpdate(dev: Dev, id: string, extra: Record<string, unknown> = {}) {
  dev.link.deliverCommand(JSON.stringify({ id, type: 'auto-update', ...extra }));
  await dev.clock.run(dev.agent.idle());
  const response = dev.responses().find((r) => r.id === id);
  if (!response?.ok || response.result.type !== 'auto-update')
    throw new Error(`no answer to ${id}`);
  return response.result.results;
}

const webState = (report: StateReport | undefined) =>
  report?.services.find((s) => s.name === 'web');

describe('a crash loop', () => {
  it('is never reported ready, with NRestarts and the journal, when there is nothing to roll back to', async () => {
    const dev = memoryDevice({ intervals: { reportMs: 5_000 } });
    // Crashes 12 s after each start: the 10 s settle passes, then it loops for good.
    dev.host.images.push(V1, { crashAfterMs: 12_000 });
    await dev.start();
    await dev.desire(signedManifest(dev.device, 1, [web()]));
    const gated = dev.states().length;
    await dev.clock.advance(120_000);

    const reports = dev.states().slice(gated).map(webState);
    expect(reports.length).toBeGreaterThan(20);
    // The first report after the first crash and every one after: not ready.
    const firstCrash = reports.findIndex((s) => s!.unit.restarts > 0);
    expect(firstCrash).toBeGreaterThan(-1);
    expect(reports.slice(firstCrash).filter((s) => s!.ready)).toEqual([]);
    expect(reports.at(-1)).toMatchObject({
      health: 'crash-looping',
      reason: expect.stringContaining('NRestarts'),
      journal: expect.arrayContaining([expect.stringContaining('Main process exited')]),
    });
    expect(dev.events().filter((e) => e.type === 'rollback')).toEqual([]);
  });

  it('of a version that passed its gate rolls back to the version before, once, and says so', async () => {
    const { dev, v1 } = await runningV1();
    // Passes the 10 s settle, crashes 20 s after each start.
    const bad = dev.host.images.push(V1, { crashAfterMs: 20_000 });
    expect(await autoUpdate(dev, 'u1')).toMatchObject([{ updated: 'true' }]);
    expect((await dev.store.loadApplied())?.services[0]).toMatchObject({ imageId: bad });

    await dev.clock.advance(90_000);
    const rollbacks = dev.events().filter((e) => e.type === 'rollback');
    expect(rollbacks).toMatchObject([
      {
        trigger: 'health',
        fromImage: `${V1} (${bad.slice(0, 12)})`,
        toImage: `${V1} (${v1.slice(0, 12)})`,
        restored: true,
        reason: expect.stringMatching(/web\.service (restarted|exited)/),
      },
    ]);
    const status = await dev.host.unitStatus('web.service');
    expect(status.container?.imageId).toBe(v1);
    await dev.clock.advance(120_000);
    expect(await dev.host.unitStatus('web.service')).toMatchObject({
      restarts: status.restarts,
      mainPid: status.mainPid,
    });
    expect(webState(dev.states().at(-1))).toMatchObject({
      ready: true,
      rejected: { imageId: bad, digest: await dev.host.imageDigest(bad) },
    });
    expect(dev.events().filter((e) => e.type === 'rollback')).toHaveLength(1);
  });

  it('of a version a manifest brought rolls back to the one before, which the drift check then keeps', async () => {
    const V2 = 'registry.example/acme/web:2';
    const dev = memoryDevice({ intervals: { reportMs: 5_000, driftMs: 30_000 } });
    const v1 = dev.host.images.push(V1);
    await dev.start();
    await dev.desire(signedManifest(dev.device, 1, [web({ autoUpdate: 'off' })]));
    dev.host.images.push(V2, { crashAfterMs: 20_000 });
    await dev.desire(signedManifest(dev.device, 2, [web({ image: V2, autoUpdate: 'off' })]));
    expect(dev.events().at(-1)).toMatchObject({ type: 'apply', generation: 2, result: 'applied' });

    await dev.clock.advance(300_000);
    expect(dev.events().filter((e) => e.type === 'rollback')).toMatchObject([
      { trigger: 'health', generation: 2, fromImage: expect.stringContaining(V2), restored: true },
    ]);
    expect((await dev.host.unitStatus('web.service')).container?.imageId).toBe(v1);
    expect(webState(dev.states().at(-1))).toMatchObject({ image: V1, ready: true });
    expect((await dev.store.loadApplied())?.failed).toMatchObject([
      { name: 'web', generation: 2, image: V2 },
    ]);
  });
});

describe('a rejected image', () => {
  async function rejectedOnce() {
    const { dev, v1 } = await runningV1();
    const bad = dev.host.images.push(V1, { crashAfterMs: 3_000 });
    expect(await autoUpdate(dev, 'u1')).toMatchObject([{ updated: 'rolled back' }]);
    return { dev, v1, bad, digest: (await dev.host.imageDigest(bad))! };
  }

  it('is skipped by auto-update, dry run or not, with no restart, until the tag moves on', async () => {
    const { dev, v1, digest } = await rejectedOnce();
    const before = await dev.host.unitStatus('web.service');
    expect(await autoUpdate(dev, 'd1', { dryRun: true })).toMatchObject([
      { unit: 'web.service', updated: 'skipped', reason: `rejected ${digest}` },
    ]);
    expect(await autoUpdate(dev, 'u2')).toMatchObject([
      { unit: 'web.service', updated: 'skipped', reason: `rejected ${digest}` },
    ]);
    const after = await dev.host.unitStatus('web.service');
    expect(after).toMatchObject({ mainPid: before.mainPid, container: { imageId: v1 } });
    // The tag still names the image that runs.
    expect(await dev.host.imageId(V1)).toBe(v1);

    const fixed = dev.host.images.push(V1);
    expect(await autoUpdate(dev, 'u3')).toMatchObject([{ updated: 'true' }]);
    expect((await dev.host.unitStatus('web.service')).container?.imageId).toBe(fixed);
    expect(webState(dev.states().at(-1))?.rejected).toBeUndefined();
  });

  it('whose tag cannot be read this run is left alone, with the registry’s reason', async () => {
    const { dev, v1 } = await rejectedOnce();
    dev.host.images.failPulls(V1);
    expect(await autoUpdate(dev, 'u2')).toEqual([
      expect.objectContaining({
        unit: 'web.service',
        updated: 'failed',
        reason: expect.stringContaining('connection refused'),
      }),
    ]);
    expect((await dev.host.unitStatus('web.service')).container?.imageId).toBe(v1);
    expect(webState(dev.states().at(-1))?.rejected).toBeDefined();
  });

  it('is tried again on retry (podfleet autoupdate --retry)', async () => {
    const { dev } = await rejectedOnce();
    expect(await autoUpdate(dev, 'r1', { retry: true })).toMatchObject([
      { updated: 'rolled back' },
    ]);
  });

  it('leaves the other services to be updated, by the agent instead of Podman', async () => {
    const api = web({ name: 'api', image: 'registry.example/acme/api:1' });
    const dev = memoryDevice();
    dev.host.images.push(V1);
    dev.host.images.push(api.image);
    await dev.start();
    await dev.desire(signedManifest(dev.device, 1, [web(), api]));
    const bad = dev.host.images.push(V1, { crashAfterMs: 3_000 });
    await autoUpdate(dev, 'u1');
    const digest = await dev.host.imageDigest(bad);
    const newer = dev.host.images.push(api.image);

    const rows = await autoUpdate(dev, 'u2');
    expect(rows).toEqual([
      expect.objectContaining({
        unit: 'web.service',
        updated: 'skipped',
        reason: `rejected ${digest}`,
      }),
      expect.objectContaining({ unit: 'api.service', policy: 'registry', updated: 'true' }),
    ]);
    expect((await dev.host.unitStatus('api.service')).container?.imageId).toBe(newer);
  });
});
