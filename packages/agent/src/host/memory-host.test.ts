import { describe, expect, it } from 'vitest';
import { renderUnits, type ServiceSpecInput, type UnitStyle } from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import { MemoryHost } from './memory-host.js';

const IMAGE = 'registry.example/acme/web:1';

function device() {
  const clock = new VirtualClock();
  const host = new MemoryHost({ clock, notifyDelayMs: 300 });
  return { clock, host };
}

async function install(host: MemoryHost, spec: ServiceSpecInput, style: UnitStyle = 'service') {
  for (const file of renderUnits(spec, { style })) await host.writeUnitFile(file);
  await host.daemonReload();
}

describe('MemoryHost units', () => {
  it('does not see a new or changed file until daemon-reload', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE);
    const [unit] = renderUnits({ name: 'web', image: IMAGE }, { style: 'service' });
    await host.writeUnitFile(unit!);
    await expect(host.start('web.service')).rejects.toThrow('Unit web.service not found.');
    expect((await host.unitStatus('web.service')).needsReload).toBe(true);

    await host.daemonReload();
    await host.start('web.service');
    expect((await host.unitStatus('web.service')).active).toBe('activating');
    await clock.advance(300);
    const first = await host.unitStatus('web.service');
    expect(first).toMatchObject({ active: 'active', sub: 'running', needsReload: false });

    // An edit to a running unit: flagged, but the running container keeps its image until restart.
    host.images.push('registry.example/acme/web:2');
    const [edited] = renderUnits(
      { name: 'web', image: 'registry.example/acme/web:2' },
      { style: 'service' },
    );
    await host.writeUnitFile(edited!);
    await host.daemonReload();
    expect((await host.unitStatus('web.service')).container?.imageId).toBe(
      first.container?.imageId,
    );
    await host.restart('web.service');
    await clock.advance(300);
    const second = await host.unitStatus('web.service');
    expect(second.container?.imageId).toBe(await host.imageId('registry.example/acme/web:2'));
    expect(second.mainPid).not.toBe(first.mainPid);
  });

  it('fails a notify unit whose app never sends READY=1 after TimeoutStartSec', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE, { neverReady: true });
    await install(host, {
      name: 'web',
      image: IMAGE,
      notify: 'container',
      restart: 'no',
      ready: { timeout: 10 },
    });
    await host.start('web.service');
    await clock.advance(9_900);
    expect((await host.unitStatus('web.service')).active).toBe('activating');
    await clock.advance(200);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'failed',
      result: 'timeout',
    });
  });

  it('goes active under --sdnotify=conmon even when the app never notifies (Podman behaviour)', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE, { neverReady: true });
    await install(host, { name: 'web', image: IMAGE, notify: 'conmon' });
    await host.start('web.service');
    await clock.advance(300);
    expect((await host.unitStatus('web.service')).active).toBe('active');
  });

  it('restarts a crashing service until StartLimitBurst, then fails (NRestarts=5)', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE, { crashAfterMs: 500 });
    await install(host, { name: 'web', image: IMAGE });
    await host.start('web.service');
    await clock.advance(400);
    expect((await host.unitStatus('web.service')).active).toBe('active');
    await clock.advance(150);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'activating',
      sub: 'auto-restart',
      result: 'exit-code',
    });
    await clock.advance(5_000);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'failed',
      result: 'start-limit-hit',
      restarts: 5,
    });
    expect((await host.journal('web.service', 20)).join('\n')).toContain(
      'Start request repeated too quickly.',
    );
    // A manual start is refused by the rate limit until reset-failed.
    await host.start('web.service');
    expect((await host.unitStatus('web.service')).result).toBe('start-limit-hit');
    await host.resetFailed('web.service');
    await host.start('web.service');
    expect((await host.unitStatus('web.service')).active).toBe('activating');
  });

  it('reports when the unit last entered active: set at READY=1, new after an automatic restart', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE, { crashOnceAfterReadyMs: 5_000 });
    await install(host, { name: 'web', image: IMAGE });
    expect(await host.unitStatus('web.service')).not.toHaveProperty('activeSince');
    await host.start('web.service');
    expect(await host.unitStatus('web.service')).not.toHaveProperty('activeSince');
    await clock.advance(300);
    const ready = await host.unitStatus('web.service');
    expect(ready).toMatchObject({ active: 'active', restarts: 0 });
    expect(ready.activeSince).toBe(new Date(clock.now()).toISOString());

    // The app exits 5 s after READY=1; Restart=on-failure brings it back, and it stays up.
    await clock.advance(5_000);
    expect(await host.unitStatus('web.service')).toMatchObject({ sub: 'auto-restart' });
    await clock.advance(400);
    const again = await host.unitStatus('web.service');
    expect(again).toMatchObject({ active: 'active', restarts: 1 });
    expect(Date.parse(again.activeSince!)).toBe(Date.parse(ready.activeSince!) + 5_400);
    await clock.advance(60_000);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'active',
      restarts: 1,
      activeSince: again.activeSince,
    });
    expect((await host.journal('web.service', 20)).join('\n')).toContain(
      'app crashed after it was ready',
    );

    // A socket's is when it started listening.
    await install(host, { name: 'echo', image: IMAGE, socket: { listen: ['127.0.0.1:9000'] } });
    await host.start('echo.socket');
    expect((await host.unitStatus('echo.socket')).activeSince).toBe(
      new Date(clock.now()).toISOString(),
    );
  });

  it('fails the unit when podman run cannot pull a missing image', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE);
    host.images.failPulls(IMAGE);
    await install(host, { name: 'web', image: IMAGE, restart: 'no' });
    await expect(host.pullImage(IMAGE)).rejects.toThrow('connection refused');
    await host.start('web.service');
    await clock.advance(1_000);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'failed',
      result: 'exit-code',
    });
  });

  it('reports an unhealthy container while the unit stays active', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE, { unhealthy: true });
    await install(host, { name: 'web', image: IMAGE, health: { cmd: 'true', interval: 1 } });
    await host.start('web.service');
    await clock.advance(1_000);
    const status = await host.unitStatus('web.service');
    expect(status.active).toBe('active');
    expect(status.container?.health).toBe('unhealthy');
  });

  it('generates NAME.service from a Quadlet file, which cannot be enabled', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE);
    await install(host, { name: 'web', image: IMAGE }, 'quadlet');
    expect((await host.unitStatus('web.service')).fileState).toBe('generated');
    await expect(host.enable('web.service')).rejects.toThrow('transient or generated');
    await host.start('web.service');
    await clock.advance(300);
    expect((await host.unitStatus('web.service')).active).toBe('active');
  });

  it('enables a service-style unit with [Install]', async () => {
    const { host } = device();
    await install(host, { name: 'web', image: IMAGE });
    expect((await host.unitStatus('web.service')).fileState).toBe('disabled');
    await host.enable('web.service');
    expect((await host.unitStatus('web.service')).fileState).toBe('enabled');
  });

  it('starts a socket-activated service on the first connection', async () => {
    const { clock, host } = device();
    host.images.push(IMAGE);
    await install(host, { name: 'echo', image: IMAGE, socket: { listen: ['127.0.0.1:8080'] } });
    await host.start('echo.socket');
    expect(await host.unitStatus('echo.socket')).toMatchObject({
      active: 'active',
      sub: 'listening',
    });
    expect((await host.unitStatus('echo.service')).active).toBe('inactive');
    host.connect('echo.socket');
    await clock.advance(300);
    expect((await host.unitStatus('echo.service')).active).toBe('active');
    // PartOf=echo.service: stopping the service stops its socket too.
    await host.stop('echo.service');
    expect((await host.unitStatus('echo.socket')).active).toBe('inactive');
    expect(() => host.connect('echo.socket')).toThrow('connection refused');
  });
});

describe('MemoryHost auto-update', () => {
  async function running(spec: ServiceSpecInput) {
    const dev = device();
    dev.host.images.push(String(spec.image));
    await install(dev.host, spec);
    await dev.host.start(`${spec.name}.service`);
    await dev.clock.advance(300);
    return dev;
  }

  it('reports pending on --dry-run and true after updating to a new registry image', async () => {
    const { clock, host } = await running({ name: 'web', image: IMAGE, autoUpdate: 'registry' });
    expect(await host.autoUpdate({ dryRun: true })).toEqual([
      expect.objectContaining({ unit: 'web.service', policy: 'registry', updated: 'false' }),
    ]);
    const next = host.images.push(IMAGE);
    const [row] = await host.autoUpdate({ dryRun: true });
    expect(row).toMatchObject({ updated: 'pending', image: IMAGE });
    expect(row!.container).toMatch(/^[0-9a-f]{12} \(web\)$/);
    expect((await clock.run(host.autoUpdate({ dryRun: false })))[0]!.updated).toBe('true');
    expect((await host.unitStatus('web.service')).container?.imageId).toBe(next);
  });

  it('rolls back an image that never sends READY=1 under --sdnotify=container', async () => {
    const { clock, host } = await running({
      name: 'web',
      image: IMAGE,
      notify: 'container',
      autoUpdate: 'registry',
      ready: { timeout: 10 },
    });
    const old = (await host.unitStatus('web.service')).container!.imageId;
    host.images.push(IMAGE, { neverReady: true });
    const [row] = await clock.run(host.autoUpdate({ dryRun: false, rollback: true }));
    expect(row!.updated).toBe('rolled back');
    expect(await host.imageId(IMAGE)).toBe(old);
    expect((await host.unitStatus('web.service')).active).toBe('active');
  });

  it('reproduces the Podman gap: a crashing image under conmon is `true`, then the unit fails', async () => {
    const { clock, host } = await running({ name: 'web', image: IMAGE, autoUpdate: 'registry' });
    await clock.advance(60_000); // the first start leaves the StartLimitIntervalSec= window
    host.images.push(IMAGE, { crashAfterMs: 1_000 });
    const [row] = await clock.run(host.autoUpdate({ dryRun: false, rollback: true }));
    expect(row!.updated).toBe('true');
    await clock.advance(15_000);
    expect(await host.unitStatus('web.service')).toMatchObject({
      active: 'failed',
      restarts: 5,
    });
  });

  it('follows the local policy: a newer local image under the same reference', async () => {
    const { clock, host } = await running({
      name: 'web',
      image: 'localhost/web:1',
      autoUpdate: 'local',
    });
    // `running` pushed it to the registry; the first start pulled it into local storage.
    const built = host.images.build('localhost/web:1');
    const [row] = await clock.run(host.autoUpdate({ dryRun: false }));
    expect(row).toMatchObject({ policy: 'local', updated: 'true' });
    expect((await host.unitStatus('web.service')).container?.imageId).toBe(built);
  });
});
