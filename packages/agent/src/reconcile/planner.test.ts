import { describe, expect, it } from 'vitest';
import {
  generateSigningKey,
  renderUnits,
  ServiceSpec,
  signManifest,
  type DeviceManifest,
  type ServiceSpecInput,
  type UnitFile,
  type UnitStyle,
} from '@podfleet/shared';
import type { UnitStatus } from '../host/host-driver.js';
import type { AppliedRecord } from '../state/applied-record.js';
import { planSteps } from './planner.js';
import type { HostSnapshot } from './snapshot.js';
import { describeStep, type Step } from './steps.js';

const key = generateSigningKey();
const V14 = 'registry.example/acme/web:1.4';
const V15 = 'registry.example/acme/web:1.5';
const web: ServiceSpecInput = { name: 'web', image: V14 };

function manifest(services: ServiceSpecInput[], generation = 2): DeviceManifest {
  return signManifest(
    { device: 'dev-1', generation, issuedAt: '2026-01-01T00:00:00.000Z', services },
    key.privateKeyPem,
  );
}

function status(unit: string, overrides: Partial<UnitStatus> = {}): UnitStatus {
  return {
    unit,
    load: 'loaded',
    active: 'active',
    sub: unit.endsWith('.socket') ? 'listening' : 'running',
    result: 'success',
    restarts: 0,
    mainPid: 1234,
    fileState: 'enabled',
    needsReload: false,
    ...overrides,
  };
}

function files(specs: ServiceSpecInput[], style: UnitStyle = 'service'): UnitFile[] {
  return specs.flatMap((spec) => renderUnits(spec, { style }));
}

function record(specs: ServiceSpecInput[], style: UnitStyle = 'service'): AppliedRecord {
  return {
    generation: 1,
    style,
    services: specs.map((spec) => ({
      spec: ServiceSpec.parse(spec),
      files: renderUnits(spec, { style }),
      imageId: 'a'.repeat(64),
    })),
    failed: [],
  };
}

/** A host that runs exactly these specs, healthy, as the agent left it. */
function runningHost(specs: ServiceSpecInput[], style: UnitStyle = 'service'): HostSnapshot {
  const absent: Partial<UnitStatus> = {
    load: 'not-found',
    active: 'inactive',
    sub: 'dead',
    fileState: 'not-found',
  };
  const units = specs.flatMap((spec) => [
    status(`${spec.name}.service`, {
      fileState: style === 'quadlet' ? 'generated' : spec.socket ? 'static' : 'enabled',
    }),
    status(`${spec.name}.socket`, spec.socket ? {} : absent),
  ]);
  return {
    files: files(specs, style),
    units: Object.fromEntries(units.map((u) => [u.unit, u])),
    images: Object.fromEntries(specs.map((spec) => [spec.image, 'a'.repeat(64)])),
  };
}

const EMPTY: HostSnapshot = { files: [], units: {}, images: {} };
const lines = (steps: Step[]) => steps.map(describeStep);
const gateOf = (steps: Step[]) => steps.find((s) => s.kind === 'await-ready');

describe('planSteps', () => {
  it('installs a new service: pull, write, reload, enable, start, gate', () => {
    const steps = planSteps(EMPTY, undefined, manifest([web]), { style: 'service' });
    expect(lines(steps)).toEqual([
      `pull ${V14}`,
      'write web.service',
      'daemon-reload',
      'enable web.service',
      'start web.service',
      'await ready web.service',
    ]);
    const write = steps.find((s) => s.kind === 'write-unit');
    expect(write?.kind === 'write-unit' && write.file.contents).toBe(files([web])[0]!.contents);
    expect(gateOf(steps)).toMatchObject({ action: 'install', units: ['web.service'] });
  });

  it('plans nothing when the host already runs the manifest (idempotent)', () => {
    expect(
      planSteps(runningHost([web]), record([web]), manifest([web]), { style: 'service' }),
    ).toEqual([]);
  });

  it('changes an image: pull the new one, rewrite, reload, restart — never stop', () => {
    const next = { ...web, image: V15 };
    const steps = planSteps(runningHost([web]), record([web]), manifest([next]), {
      style: 'service',
    });
    expect(lines(steps)).toEqual([
      `pull ${V15}`,
      'write web.service',
      'daemon-reload',
      'restart web.service',
      'await ready web.service',
    ]);
    const write = steps[1]!;
    expect(write.kind === 'write-unit' && write.file.contents).toContain(V15);
    expect(gateOf(steps)).toMatchObject({ action: 'update', spec: { image: V15 } });
  });

  it('changes the spec with the image already local: no pull', () => {
    const next = { ...web, env: { GREETING: 'hi' } };
    const steps = planSteps(runningHost([web]), record([web]), manifest([next]), {
      style: 'service',
    });
    expect(lines(steps)).toEqual([
      'write web.service',
      'daemon-reload',
      'restart web.service',
      'await ready web.service',
    ]);
  });

  it('removes services that left the manifest, after the rest, and leaves foreign units alone', () => {
    const db: ServiceSpecInput = { name: 'db', image: 'registry.example/acme/db:3' };
    const cache: ServiceSpecInput = { name: 'cache', image: 'registry.example/acme/cache:1' };
    const host = runningHost([web, db, cache]);
    // cache was written by the agent (marker) but never recorded: a crash before the record.
    host.files.push({ name: 'sshd-extra.service', kind: 'systemd', contents: '[Service]\n' });
    const steps = planSteps(host, record([web, db]), manifest([web]), { style: 'service' });
    expect(lines(steps)).toEqual([
      'stop cache.service',
      'disable cache.service',
      'remove cache.service',
      'stop db.service',
      'disable db.service',
      'remove db.service',
      'daemon-reload',
    ]);
  });

  it('starts a socket-activated service by its socket, not the service', () => {
    const echo: ServiceSpecInput = {
      name: 'echo',
      image: 'localhost/pf/echo:1',
      socket: { listen: ['127.0.0.1:18090'] },
    };
    const steps = planSteps(EMPTY, undefined, manifest([echo]), { style: 'service' });
    expect(lines(steps)).toEqual([
      'pull localhost/pf/echo:1',
      'write echo.service',
      'write echo.socket',
      'daemon-reload',
      'enable echo.socket',
      'start echo.socket',
      'await ready echo.socket',
    ]);
    expect(steps.find((s) => s.kind === 'write-socket')).toBeDefined();
  });

  it('moves a running socket-activated service to its new version and gates both units', () => {
    const echo: ServiceSpecInput = {
      name: 'echo',
      image: 'localhost/pf/echo:1',
      socket: { listen: ['127.0.0.1:18090'] },
    };
    const next = { ...echo, env: { MODE: 'fast' } };
    const steps = planSteps(runningHost([echo]), record([echo]), manifest([next]), {
      style: 'service',
    });
    expect(lines(steps)).toEqual([
      'write echo.service',
      'daemon-reload',
      'restart echo.service',
      'await ready echo.socket echo.service',
    ]);
  });

  it('installs a Quadlet .container and starts the generated service without enabling it', () => {
    const steps = planSteps(EMPTY, undefined, manifest([web]), { style: 'quadlet' });
    expect(lines(steps)).toEqual([
      `pull ${V14}`,
      'write web.container',
      'daemon-reload',
      'start web.service',
      'await ready web.service',
    ]);
    const write = steps[1]!;
    expect(write.kind === 'write-unit' && write.file.kind).toBe('quadlet');
  });

  it('switches a device from service units to Quadlet after a Podman upgrade', () => {
    const steps = planSteps(runningHost([web]), record([web]), manifest([web]), {
      style: 'quadlet',
    });
    expect(lines(steps)).toEqual([
      'disable web.service',
      'write web.container',
      'remove web.service',
      'daemon-reload',
      'restart web.service',
      'await ready web.service',
    ]);
  });

  it('starts a new service before stopping the one it replaces', () => {
    const web2 = { ...web, name: 'web2' };
    const steps = lines(
      planSteps(runningHost([web]), record([web]), manifest([web2]), { style: 'service' }),
    );
    expect(steps.indexOf('await ready web2.service')).toBeGreaterThan(-1);
    expect(steps.indexOf('await ready web2.service')).toBeLessThan(
      steps.indexOf('stop web.service'),
    );
  });

  it('repairs drift: a unit file edited by hand is rewritten and restarted', () => {
    const host = runningHost([web]);
    host.files[0] = { ...host.files[0]!, contents: `${host.files[0]!.contents}# edited\n` };
    host.units['web.service']!.needsReload = true;
    const steps = planSteps(host, record([web]), manifest([web]), { style: 'service' });
    expect(lines(steps)).toEqual([
      'write web.service',
      'daemon-reload',
      'restart web.service',
      'await ready web.service',
    ]);
    expect(gateOf(steps)).toMatchObject({ action: 'repair' });
  });

  it('repairs drift: a stopped or failed service is started again, without rewriting it', () => {
    const stopped = runningHost([web]);
    stopped.units['web.service'] = status('web.service', { active: 'inactive', sub: 'dead' });
    expect(lines(planSteps(stopped, record([web]), manifest([web]), { style: 'service' }))).toEqual(
      ['start web.service', 'await ready web.service'],
    );
    const failed = runningHost([web]);
    failed.units['web.service'] = status('web.service', {
      active: 'failed',
      sub: 'failed',
      result: 'start-limit-hit',
    });
    expect(lines(planSteps(failed, record([web]), manifest([web]), { style: 'service' }))).toEqual([
      'reset-failed web.service',
      'start web.service',
      'await ready web.service',
    ]);
  });

  it('leaves alone a stopped service whose start systemd has queued (a boot still under way)', () => {
    const booting = runningHost([web]);
    booting.units['web.service'] = status('web.service', {
      active: 'inactive',
      sub: 'dead',
      jobQueued: true,
    });
    expect(planSteps(booting, record([web]), manifest([web]), { style: 'service' })).toEqual([]);
  });

  it('finishes a change interrupted between write and daemon-reload', () => {
    const next = { ...web, image: V15 };
    const host = runningHost([next]);
    host.units['web.service']!.needsReload = true;
    const steps = planSteps(host, record([web]), manifest([next]), { style: 'service' });
    expect(lines(steps)).toEqual([
      'daemon-reload',
      'restart web.service',
      'await ready web.service',
    ]);
  });

  it('does not retry a change rolled back in this generation, but does in a newer one', () => {
    const next = { ...web, image: V15 };
    const applied: AppliedRecord = {
      ...record([web]),
      generation: 2,
      failed: [{ name: 'web', generation: 2, image: V15, files: files([next]), reason: 'crashed' }],
    };
    expect(
      planSteps(runningHost([web]), applied, manifest([next], 2), { style: 'service' }),
    ).toEqual([]);
    expect(
      lines(planSteps(runningHost([web]), applied, manifest([next], 3), { style: 'service' })),
    ).toContain('restart web.service');
  });
});
