import { describe, expect, it } from 'vitest';
import { DeviceEvent, type ServiceSpecInput } from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import type { HostDriver } from '../host/host-driver.js';
import { MemoryHost } from '../host/memory-host.js';
import { signedManifest } from '../runtime/testing.js';
import { MemoryStateStore } from '../state/state-store.js';
import type { ApplyOutcome } from './executor.js';
import { reconcile } from './reconcile.js';

const V1 = 'registry.example/acme/web:1';
const V2 = 'registry.example/acme/web:2';
const web = (image: string, extra: Partial<ServiceSpecInput> = {}): ServiceSpecInput => ({
  name: 'web',
  image,
  ready: { timeout: 10, settle: 5 },
  ...extra,
});

const manifest = (generation: number, services: ServiceSpecInput[]) =>
  signedManifest('dev-1', generation, services);

/** A device running V1 of `spec`; `apply` sends generation 2 with `spec` on V2. */
async function runningV1(
  spec: Partial<ServiceSpecInput> = {},
  driverOf = (h: HostDriver) => h,
  pollMs = 500,
) {
  const clock = new VirtualClock();
  const host = new MemoryHost({ clock });
  const store = new MemoryStateStore();
  const deps = { driver: driverOf(host), clock, store, device: 'dev-1', pollMs };
  host.images.push(V1);
  expect((await clock.run(reconcile(manifest(1, [web(V1, spec)]), deps))).result).toBe('applied');
  const apply = () => clock.run(reconcile(manifest(2, [web(V2, spec)]), deps));
  return { clock, host, apply };
}

/** The rollback's failure and the apply event's, which must be the same one. */
function failures(outcome: ApplyOutcome) {
  for (const event of outcome.events) expect(DeviceEvent.parse(event)).toEqual(event);
  const rollback = outcome.events.find((e) => e.type === 'rollback');
  const apply = outcome.events.find((e) => e.type === 'apply');
  expect(apply).toMatchObject({ result: 'failed' });
  const failure = apply?.type === 'apply' ? apply.failure : undefined;
  if (rollback?.type === 'rollback') expect(rollback.failure).toEqual(failure);
  return { failure, rolledBack: rollback !== undefined };
}

describe('the failure an apply reports, on the memory host', () => {
  it('pull-failed: the image cannot be pulled; nothing was touched, so no journal', async () => {
    const { host, apply } = await runningV1();
    host.images.push(V2);
    host.images.failPulls(V2);
    const { failure, rolledBack } = failures(await apply());
    expect(rolledBack).toBe(false);
    expect(failure).toEqual({
      reason: 'pull-failed',
      unit: 'web.service',
      detail: expect.stringMatching(/^pull registry\.example\/acme\/web:2: .*connection refused/),
      journal: [],
    });
  });

  it('start-timeout: never READY=1 (notify container) within ready.timeout', async () => {
    const { host, apply } = await runningV1({ notify: 'container' });
    host.images.push(V2, { neverReady: true });
    const { failure, rolledBack } = failures(await apply());
    expect(rolledBack).toBe(true);
    expect(failure).toMatchObject({ reason: 'start-timeout', unit: 'web.service' });
    expect(failure?.detail).toMatch(
      /web\.service (not active within 10s|failed \(result: timeout\)|exited \(result: timeout\))/,
    );
    // The failed run's lines, read before the rollback started the previous version again.
    expect(failure?.journal.at(-1)).not.toMatch(/Started web\.service/);
    expect(failure?.journal.join('\n')).toMatch(/Starting web\.service\.\.\./);
  });

  it('start-timeout: an app that exits before it was ever active did not start', async () => {
    const { host, apply } = await runningV1({ notify: 'container' });
    host.images.push(V2, { crashAfterMs: 100, neverReady: true });
    const { failure } = failures(await apply());
    expect(failure).toMatchObject({ reason: 'start-timeout', unit: 'web.service' });
    expect(failure?.detail).toMatch(/exited \(result: exit-code\)|restarted/);
  });

  it('start-timeout: systemd refuses to start the new version', async () => {
    const refused = 'Job for web.service failed because of unavailable resources';
    const { host, apply } = await runningV1({}, (h) =>
      withMethod(h as MemoryHost, 'restart', () => Promise.reject(new Error(refused))),
    );
    host.images.push(V2);
    const { failure, rolledBack } = failures(await apply());
    expect(rolledBack).toBe(true);
    expect(failure).toMatchObject({
      reason: 'start-timeout',
      unit: 'web.service',
      detail: `restart web.service: ${refused}`,
    });
  });

  it('unhealthy: the healthcheck fails while the unit stays active', async () => {
    const health = { cmd: 'curl -fsS localhost/', interval: 5 };
    const { host, apply } = await runningV1({ health });
    host.images.push(V2, { unhealthy: true });
    const { failure } = failures(await apply());
    expect(failure).toMatchObject({
      reason: 'unhealthy',
      unit: 'web.service',
      detail: 'web.service container unhealthy',
    });
  });

  it('start-timeout: a healthcheck that never passes (still starting) is not ready, not unhealthy', async () => {
    const health = { cmd: 'curl -fsS localhost/', interval: 5 };
    const { host, apply } = await runningV1({ health });
    host.images.push(V2, { readyAfterMs: 60_000 });
    const { failure } = failures(await apply());
    expect(failure).toMatchObject({
      reason: 'start-timeout',
      detail: 'web.service container not healthy (starting)',
    });
  });

  it('crashed-after-start: the app exits during settle, after conmon said ready', async () => {
    const { host, apply } = await runningV1();
    host.images.push(V2, { crashAfterMs: 2_000 });
    const { failure } = failures(await apply());
    expect(failure).toMatchObject({ reason: 'crashed-after-start', unit: 'web.service' });
    const journal = failure!.journal.join('\n');
    expect(journal).toContain('Started web.service.');
    expect(journal).toContain('Main process exited, status=1');
    expect(failure!.journal.length).toBeLessThanOrEqual(20);
  });

  it('crashed-after-start: also when it was active and crashed between two polls', async () => {
    const { host, apply } = await runningV1({}, (h) => h, 2_000);
    host.images.push(V2, { crashAfterMs: 700 });
    // Active at 0.3 s, exits at 0.7 s, active again at 1.1 s, …: the gate's first poll after its
    // start (2 s) sees a restarted unit, never having seen it active; its activeSince tells.
    const { failure } = failures(await apply());
    expect(failure).toMatchObject({
      reason: 'crashed-after-start',
      detail: expect.stringMatching(/restarted \d time/),
    });
  });

  it('rolled-back: the host failed a step (a unit write), not the version', async () => {
    const { host, apply } = await runningV1({}, (h) =>
      withWriteFailing(h as MemoryHost, V2, 'write web.service: No space left on device'),
    );
    host.images.push(V2);
    const { failure, rolledBack } = failures(await apply());
    expect(rolledBack).toBe(true);
    expect(failure).toMatchObject({
      reason: 'rolled-back',
      unit: 'web.service',
      detail: expect.stringContaining('No space left on device'),
    });
  });

  it('still rolls back, without journal lines, when the journal cannot be read', async () => {
    const { host, apply } = await runningV1({}, (h) =>
      withMethod(h as MemoryHost, 'journal', () => Promise.reject(new Error('journalctl: no'))),
    );
    host.images.push(V2, { crashAfterMs: 2_000 });
    const outcome = await apply();
    expect(outcome.events[0]).toMatchObject({ type: 'rollback', restored: true });
    expect(failures(outcome).failure).toMatchObject({
      reason: 'crashed-after-start',
      journal: [],
    });
  });

  it('cuts the journal to its last 20 lines of at most 500 characters', async () => {
    const long = 'x'.repeat(2_000);
    const lines = Array.from({ length: 40 }, (_, i) => (i === 39 ? long : `line ${i}`));
    const { host, apply } = await runningV1({}, (h) =>
      withMethod(h as MemoryHost, 'journal', async () => lines),
    );
    host.images.push(V2, { crashAfterMs: 2_000 });
    const journal = failures(await apply()).failure!.journal;
    expect(journal).toHaveLength(20);
    expect(journal[0]).toBe('line 20');
    expect(journal.at(-1)).toBe(`${'x'.repeat(497)}...`);
  });
});

function withMethod<K extends keyof HostDriver>(
  host: MemoryHost,
  method: K,
  replacement: HostDriver[K],
): HostDriver {
  return new Proxy(host, {
    get(target, property, receiver) {
      if (property === method) return replacement;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A host whose disk refuses the unit file that names `image`. */
function withWriteFailing(host: MemoryHost, image: string, message: string): HostDriver {
  return withMethod(host, 'writeUnitFile', async (file) => {
    if (file.contents.includes(image)) throw new Error(message);
    return host.writeUnitFile(file);
  });
}
