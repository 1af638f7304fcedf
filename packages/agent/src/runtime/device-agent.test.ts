import { describe, expect, it } from 'vitest';
import { generateSigningKey, type ServiceSpecInput } from '@podfleet/shared';
import { controllerKey, memoryDevice, signedManifest } from './testing.js';

const V1 = 'registry.example/acme/web:1';
const V2 = 'registry.example/acme/web:2';
const web = (image: string, extra: Partial<ServiceSpecInput> = {}): ServiceSpecInput => ({
  name: 'web',
  image,
  ready: { timeout: 30, settle: 10 },
  ...extra,
});

async function runningV1(options: Parameters<typeof memoryDevice>[0] = {}, spec = web(V1)) {
  const dev = memoryDevice(options);
  dev.host.images.push(spec.image);
  await dev.start();
  await dev.desire(signedManifest(dev.device, 1, [spec]));
  return dev;
}

describe('the agent loop on the memory host', () => {
  it('applies a signed manifest and reports events and state, ready from the gate', async () => {
    const dev = memoryDevice();
    const v1 = dev.host.images.push(V1);
    await dev.start();
    // A state report right at start, before any manifest.
    expect(dev.states()).toMatchObject([{ device: 'dev-1', generation: 0, services: [] }]);

    await dev.desire(signedManifest('dev-1', 1, [web(V1)]));
    expect(dev.events()).toMatchObject([
      {
        type: 'apply',
        generation: 1,
        result: 'applied',
        services: [{ name: 'web', image: V1, action: 'installed' }],
      },
    ]);
    const report = dev.states().at(-1)!;
    expect(report).toMatchObject({
      device: 'dev-1',
      generation: 1,
      host: { podman: '5.4.2', systemd: '257', unitStyle: 'quadlet' },
      services: [
        {
          name: 'web',
          image: V1,
          imageId: v1,
          unit: { active: 'active', sub: 'running', restarts: 0 },
          container: { state: 'running', health: 'none' },
          ready: true,
        },
      ],
    });
    // When systemd last saw the unit enter active: READY=1, before the gate's settle period.
    const activeSince = Date.parse(report.services[0]!.unit.activeSince!);
    expect(dev.clock.now() - activeSince).toBeGreaterThanOrEqual(10_000);
    // State is retained (latest only), events are not.
    expect(dev.link.retained.has('pf/v1/dev/dev-1/state')).toBe(true);
    expect(dev.link.delivered.find((m) => m.topic.endsWith('/events'))?.retain).toBe(false);
  });

  it('rejects a bad signature, another device, and a replayed older generation, with events', async () => {
    const dev = await runningV1();
    dev.host.images.push(V2);
    await dev.desire(signedManifest('dev-1', 3, [web(V2)]));
    const stranger = generateSigningKey();
    await dev.desire(signedManifest('dev-1', 4, [web(V1)], stranger));
    await dev.desire(signedManifest('dev-2', 5, [web(V1)]));
    await dev.desire(signedManifest('dev-1', 2, [web(V1)]));
    await dev.desire('{not json');

    const rejected = dev.events().filter((e) => e.type === 'apply' && e.result === 'rejected');
    expect(rejected.map((e) => e.type === 'apply' && [e.generation, e.reason])).toEqual([
      [4, `signed by unknown key ${stranger.keyId}`],
      [5, 'manifest is for device dev-2, not dev-1'],
      [2, 'generation 2 is not newer than applied generation 3'],
      [0, 'manifest is not JSON'],
    ]);
    // What runs keeps running.
    expect(dev.states().at(-1)).toMatchObject({ generation: 3, services: [{ image: V2 }] });
  });

  it('takes the retained copy of the applied manifest quietly, also after a restart', async () => {
    const dev = await runningV1();
    const before = dev.events().length;
    await dev.desire(signedManifest('dev-1', 1, [web(V1)])); // reconnect: the retained one again
    await dev.restart();
    await dev.desire(signedManifest('dev-1', 1, [web(V1)]));
    expect(dev.events()).toHaveLength(before);
  });

  it('after a restart, repairs at once what broke while it was down', async () => {
    const dev = await runningV1();
    await dev.restart();
    await dev.host.stop('web.service'); // e.g. the device rebooted and the unit did not come up
    await dev.desire(signedManifest('dev-1', 1, [web(V1)]));
    expect(dev.events().at(-2)).toMatchObject({
      type: 'drift',
      observed: 'web.service inactive/dead',
      action: 'reconciled',
    });
    expect((await dev.host.unitStatus('web.service')).active).toBe('active');
  });

  it('applies one manifest at a time; of those arriving meanwhile only the newest', async () => {
    const dev = await runningV1();
    dev.host.images.push(V2);
    const v3 = 'registry.example/acme/web:3';
    const v4 = 'registry.example/acme/web:4';
    dev.host.images.push(v3);
    dev.host.images.push(v4);
    dev.link.deliverDesired(JSON.stringify(signedManifest('dev-1', 2, [web(V2)])));
    await dev.clock.advance(1_000); // generation 2 is in its gate now
    dev.link.deliverDesired(JSON.stringify(signedManifest('dev-1', 3, [web(v3)])));
    dev.link.deliverDesired(JSON.stringify(signedManifest('dev-1', 4, [web(v4)])));
    await dev.clock.run(dev.agent.idle());

    const applies = dev.events().filter((e) => e.type === 'apply');
    expect(applies.map((e) => e.type === 'apply' && [e.generation, e.result])).toEqual([
      [1, 'applied'],
      [2, 'applied'],
      [4, 'applied'],
    ]);
    expect(dev.states().at(-1)).toMatchObject({ generation: 4, services: [{ image: v4 }] });
  });

  it('rolls back a failing new image and reports the old one running, ready', async () => {
    const dev = await runningV1();
    dev.host.images.push(V2, { crashAfterMs: 2_000 });
    await dev.desire(signedManifest('dev-1', 2, [web(V2)]));
    expect(dev.events().slice(-2)).toMatchObject([
      { type: 'rollback', trigger: 'apply', fromImage: V2, toImage: V1, restored: true },
      { type: 'apply', generation: 2, result: 'failed' },
    ]);
    expect(dev.states().at(-1)).toMatchObject({
      generation: 2,
      services: [{ image: V1, ready: true }],
    });
  });

  it('applies the settle override of the agent config to every gate', async () => {
    const dev = memoryDevice({ settle: 1 });
    dev.host.images.push(V1);
    await dev.start();
    const started = dev.clock.now();
    await dev.desire(signedManifest('dev-1', 1, [web(V1, { ready: { timeout: 30, settle: 60 } })]));
    expect(dev.clock.now() - started).toBeLessThan(5_000);
  });

  it('repairs drift on its timer and reports it: a stopped unit, then an edited unit file', async () => {
    const dev = await runningV1({ intervals: { driftMs: 60_000 } });
    await dev.host.stop('web.service');
    await dev.clock.advance(60_000);
    await dev.clock.run(dev.agent.idle());
    const drift = dev.events().filter((e) => e.type === 'drift');
    expect(drift).toMatchObject([
      {
        service: 'web',
        observed: 'web.service inactive/dead',
        expected: 'web.service running the units of generation 1',
        action: 'reconciled',
      },
    ]);
    expect((await dev.host.unitStatus('web.service')).active).toBe('active');

    const [file] = await dev.host.listUnitFiles();
    await dev.host.writeUnitFile({ ...file!, contents: `${file!.contents}# edited\n` });
    await dev.clock.advance(60_000);
    await dev.clock.run(dev.agent.idle());
    expect(
      dev
        .events()
        .filter((e) => e.type === 'drift')
        .at(-1),
    ).toMatchObject({
      observed: 'web.container changed on disk',
      action: 'reconciled',
    });
    expect((await dev.host.listUnitFiles())[0]).toEqual(file);
    expect(dev.states().at(-1)?.services[0]?.ready).toBe(true);

    // Nothing to repair: no events at all.
    const before = dev.events().length;
    await dev.clock.advance(60_000);
    await dev.clock.run(dev.agent.idle());
    expect(dev.events()).toHaveLength(before);
  });

  it('reports a service that is down as not ready', async () => {
    const dev = await runningV1({ intervals: { reportMs: 60_000 } });
    await dev.host.stop('web.service');
    await dev.clock.advance(60_000);
    await dev.clock.run(dev.agent.idle());
    expect(dev.states().at(-1)?.services[0]).toMatchObject({
      unit: { active: 'inactive' },
      ready: false,
    });
  });
});

describe('auto-update with the agent gate', () => {
  const auto = web(V1, { autoUpdate: 'registry' });

  it('rolls back an update that crashes after conmon said ready (the Podman gap)', async () => {
    const dev = await runningV1({ intervals: { autoUpdateMs: 3_600_000 } }, auto);
    const old = (await dev.host.unitStatus('web.service')).container!.imageId;
    await dev.clock.advance(60_000); // out of the first start's StartLimitIntervalSec= window
    const bad = dev.host.images.push(V1, { crashAfterMs: 1_000 });
    await dev.clock.advance(3_600_000 * 1.1);
    await dev.clock.run(dev.agent.idle());

    const [rollback, update] = dev.events().slice(-2);
    expect(rollback).toMatchObject({
      type: 'rollback',
      trigger: 'auto-update',
      service: 'web',
      generation: 1,
      fromImage: `${V1} (${bad.slice(0, 12)})`,
      toImage: `${V1} (${old.slice(0, 12)})`,
      restored: true,
      // What the gate saw, with the crashed run's journal (read before the rollback restarted it).
      failure: {
        reason: 'crashed-after-start',
        unit: 'web.service',
        journal: expect.arrayContaining([expect.stringContaining('Main process exited, status=1')]),
      },
    });
    expect(update).toMatchObject({
      type: 'auto-update',
      dryRun: false,
      results: [{ unit: 'web.service', image: V1, policy: 'registry', updated: 'rolled back' }],
    });
    expect(await dev.host.unitStatus('web.service')).toMatchObject({
      active: 'active',
      container: { imageId: old },
    });
    expect(await dev.store.loadBackup('web')).toBeUndefined();
  });

  it('keeps a good update and makes it the image a later rollback returns to', async () => {
    const dev = await runningV1({}, auto);
    const next = dev.host.images.push(V1);
    dev.link.deliverCommand(JSON.stringify({ id: 'c1', type: 'auto-update', dryRun: false }));
    await dev.clock.run(dev.agent.idle());
    expect(dev.responses()).toMatchObject([
      { id: 'c1', ok: true, result: { type: 'auto-update', results: [{ updated: 'true' }] } },
    ]);
    expect((await dev.store.loadApplied())?.services[0]?.imageId).toBe(next);
    expect(dev.states().at(-1)?.services[0]).toMatchObject({ imageId: next, ready: true });
  });

  it('dry-run reports pending and changes nothing', async () => {
    const dev = await runningV1({}, auto);
    const running = (await dev.host.unitStatus('web.service')).container!.imageId;
    dev.host.images.push(V1);
    dev.link.deliverCommand(JSON.stringify({ id: 'c2', type: 'auto-update', dryRun: true }));
    await dev.clock.run(dev.agent.idle());
    expect(dev.events().at(-1)).toMatchObject({
      type: 'auto-update',
      dryRun: true,
      results: [{ updated: 'pending' }],
    });
    expect((await dev.host.unitStatus('web.service')).container?.imageId).toBe(running);
  });

  it('leaves a service pinned by digest alone, and does not run on schedule for it', async () => {
    const pinned = `registry.example/acme/web@sha256:${'a'.repeat(64)}`;
    const dev = await runningV1({ intervals: { autoUpdateMs: 3_600_000 } }, web(pinned));
    dev.host.images.push(pinned);
    await dev.clock.advance(3_600_000 * 1.2);
    await dev.clock.run(dev.agent.idle());
    expect(dev.events().filter((e) => e.type === 'auto-update')).toEqual([]);
    // On command it runs, and Podman finds nothing labelled to update.
    dev.link.deliverCommand(JSON.stringify({ id: 'c3', type: 'auto-update' }));
    await dev.clock.run(dev.agent.idle());
    expect(dev.events().at(-1)).toMatchObject({ type: 'auto-update', results: [] });
  });
});

describe('commands', () => {
  it('tails logs of a managed service and refuses others', async () => {
    const dev = await runningV1();
    dev.link.deliverCommand(JSON.stringify({ id: 'l1', type: 'logs', service: 'web', lines: 2 }));
    dev.link.deliverCommand(JSON.stringify({ id: 'l2', type: 'logs', service: 'sshd' }));
    await dev.clock.run(dev.agent.idle());
    const logs = dev.responses().find((r) => r.id === 'l1');
    const refused = dev.responses().find((r) => r.id === 'l2');
    expect(logs).toMatchObject({ id: 'l1', ok: true, result: { type: 'logs', service: 'web' } });
    expect(logs?.ok && logs.result.type === 'logs' && logs.result.lines).toHaveLength(2);
    expect(refused).toEqual({
      id: 'l2',
      ok: false,
      error: 'service sshd: not managed on this device',
    });
  });

  it('restarts a service once per request id, gated, and answers a redelivery again', async () => {
    const dev = await runningV1();
    const pid = (await dev.host.unitStatus('web.service')).mainPid;
    const request = JSON.stringify({ id: 'r1', type: 'restart', service: 'web' });
    dev.link.deliverCommand(request);
    dev.link.deliverCommand(request);
    await dev.clock.run(dev.agent.idle());
    expect(dev.responses()).toEqual([
      { id: 'r1', ok: true, result: { type: 'restart', service: 'web', ready: true } },
      { id: 'r1', ok: true, result: { type: 'restart', service: 'web', ready: true } },
    ]);
    const after = await dev.host.unitStatus('web.service');
    expect(after.mainPid).not.toBe(pid);
    expect(after.mainPid).toBe(pid + 1);
  });

  it('answers an invalid request that has an id, naming the field', async () => {
    const dev = await runningV1();
    dev.link.deliverCommand(JSON.stringify({ id: 'x1', type: 'logs', service: 'web', lines: 0 }));
    dev.link.deliverCommand(JSON.stringify({ id: 'x2', type: 'reboot' }));
    dev.link.deliverCommand('nonsense');
    await dev.clock.run(dev.agent.idle());
    expect(dev.responses()).toEqual([
      {
        id: 'x1',
        ok: false,
        error: 'invalid command: lines: Too small: expected number to be >=1',
      },
      { id: 'x2', ok: false, error: expect.stringMatching(/^invalid command: type: /) },
    ]);
  });
});

describe('the outbox under the loop', () => {
  it('keeps what happens while offline and sends it, in order, when the link is back', async () => {
    const dev = await runningV1();
    dev.link.disconnect();
    dev.host.images.push(V2);
    await dev.desire(signedManifest('dev-1', 2, [web(V2)]));
    const sentBefore = dev.events().length;
    expect(dev.outbox.stats().waiting).toBeGreaterThanOrEqual(2); // the apply event + the state
    dev.link.connect();
    await dev.outbox.drained();
    expect(dev.events().slice(sentBefore)).toMatchObject([{ type: 'apply', generation: 2 }]);
    expect(dev.states().at(-1)).toMatchObject({ generation: 2 });
    expect(controllerKey.keyId).toMatch(/^[0-9a-f]{16}$/);
  });
});
