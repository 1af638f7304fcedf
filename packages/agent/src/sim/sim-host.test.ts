import { describe, expect, it } from 'vitest';
import { generateSigningKey, signManifest, type ServiceSpecInput } from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import { reconcile } from '../reconcile/reconcile.js';
import { readStateReport } from '../runtime/state-report.js';
import { MemoryStateStore } from '../state/state-store.js';
import { SimHost } from './sim-host.js';

const host = (failing: boolean, badImage?: string) =>
  new SimHost({ clock: new VirtualClock(), name: 'sim-0000' }, failing, badImage);

describe('a simulated device’s images', () => {
  it('are good on a device that is not failing', async () => {
    const h = host(false);
    const id = await h.pullImage('r.example/web:2');
    expect(h.images.behaviourOf(id)).toEqual({});
  });

  it('fail on a failing device only after its first successful apply', async () => {
    const h = host(true);
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:1'))).toEqual({});
    h.failNewImages = true;
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:2'))).toMatchObject({
      neverReady: true,
    });
  });

  it('fail on every device when they match --bad-image, from the first', async () => {
    const h = host(false, 'broken');
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:2-broken'))).toMatchObject({
      neverReady: true,
    });
    expect(h.images.behaviourOf(await h.pullImage('r.example/web:2'))).toEqual({});
  });

  it('crash once some seconds after ready when the reference says crash-after-Ns', async () => {
    const h = host(false, 'broken');
    const crash = await h.pullImage('r.example/web:1.1-crash-after-30s');
    expect(h.images.behaviourOf(crash)).toEqual({ crashOnceAfterReadyMs: 30_000 });
    // A bad release is bad first: it never gets ready, so it cannot crash after ready.
    const both = await h.pullImage('r.example/web:1.1-crash-after-30s-broken');
    expect(h.images.behaviourOf(both)).toMatchObject({ neverReady: true });
  });
});

describe('a simulated device running a crash-after-Ns image', () => {
  const key = generateSigningKey();
  const web = (image: string): ServiceSpecInput => ({
    name: 'web',
    image,
    ready: { timeout: 30, settle: 2 },
  });

  it('passes its gate; its restart N seconds after ready is a crash loop at the next look, ready again once NRestarts stays', async () => {
    const clock = new VirtualClock();
    const h = new SimHost({ clock, name: 'sim-0000' }, false);
    const store = new MemoryStateStore();
    const desired = signManifest(
      {
        device: 'sim-0000',
        generation: 1,
        issuedAt: '2026-01-01T00:00:00.000Z',
        services: [web('r.example/web:2-crash-after-5s')],
      },
      key.privateKeyPem,
    );
    const deps = { driver: h, clock, store, device: 'sim-0000' };
    // settle (2 s) ends before the crash (5 s after ready): the agent applies it.
    expect((await clock.run(reconcile(desired, deps))).result).toBe('applied');
    let lastRestarts: number | undefined;
    const report = async () => {
      const service = (
        await readStateReport({
          device: 'sim-0000',
          driver: h,
          clock,
          record: await store.loadApplied(),
          manifest: desired,
          lastRestarts: () => lastRestarts,
        })
      ).services[0]!;
      lastRestarts = service.unit.restarts;
      return service;
    };
    const ready = await report();
    expect(ready).toMatchObject({ ready: true, unit: { active: 'active', restarts: 0 } });
    const readyAt = Date.parse(ready.unit.activeSince!);
    expect(clock.now() - readyAt).toBeLessThan(5_000); // the gate ended before the crash

    await clock.advance(3_500);
    const restarted = await report();
    // Active again, but NRestarts moved since the last look: not ready, and why.
    expect(restarted).toMatchObject({
      ready: false,
      health: 'crash-looping',
      unit: { active: 'active', restarts: 1 },
      reason: 'web.service restarted 1 time(s) since the last look, NRestarts 1',
    });
    expect(restarted.journal?.join('\n')).toContain('Main process exited');
    // Exit at ready + 5 s, RestartSec= 100 ms, READY=1 300 ms into the new run.
    expect(Date.parse(restarted.unit.activeSince!)).toBe(readyAt + 5_400);

    // Once: the restarted app stays up, and the next look finds the count where it was.
    await clock.advance(60_000);
    expect(await report()).toMatchObject({ ready: true, health: 'ready', unit: { restarts: 1 } });
  });
});
