import { describe, expect, it } from 'vitest';
import {
  computeCompliance,
  worstOf,
  type ComplianceInput,
  type ReportedService,
} from './compliance.js';

const WEB_14 = 'registry.example/acme/web:1.4';
const WEB_18 = 'registry.example/acme/web:1.8';

const running = (image: string, extra: Partial<ReportedService> = {}): ReportedService => ({
  name: 'web',
  image,
  imageId: 'a'.repeat(64),
  ready: true,
  health: 'ready',
  ...extra,
});

const device = (over: Partial<ComplianceInput> = {}): ComplianceInput => ({
  online: true,
  desired: { generation: 3, services: [{ name: 'web', image: WEB_18 }] },
  reported: { generation: 3, services: [running(WEB_18)] },
  events: [],
  ...over,
});

const failedApply = {
  type: 'apply',
  generation: 3,
  result: 'failed',
  services: [{ name: 'web', image: WEB_18, action: 'start' }],
  reason: 'web: not ready within 30s',
  failure: { reason: 'start-timeout', unit: 'web.service', journal: ['boom'] },
};

describe('computeCompliance', () => {
  it('is in-sync when the device applied the manifest and runs its image, ready', () => {
    const result = computeCompliance(device());
    expect(result.state).toBe('in-sync');
    expect(result.services).toEqual([
      {
        service: 'web',
        state: 'in-sync',
        desired: WEB_18,
        running: WEB_18,
        imageId: 'a'.repeat(64),
      },
    ]);
  });

  it('is in-sync from an agent before 0.2: ready, without health or image id', () => {
    const old = { name: 'web', image: WEB_18, ready: true };
    expect(computeCompliance(device({ reported: { generation: 3, services: [old] } })).state).toBe(
      'in-sync',
    );
  });

  it('is not in-sync when the generation is applied but an older image runs', () => {
    const result = computeCompliance(
      device({ reported: { generation: 3, services: [running(WEB_14)] } }),
    );
    expect(result.state).toBe('drifted');
    expect(result.services[0]).toMatchObject({ desired: WEB_18, running: WEB_14 });
  });

  it('is failed with the structured reason when the last apply failed and the old image runs', () => {
    const result = computeCompliance(
      device({
        reported: { generation: 3, services: [running(WEB_14)] },
        events: [failedApply, { type: 'rollback', service: 'web', generation: 3 }],
      }),
    );
    expect(result.state).toBe('failed');
    expect(result.services[0]!.failure).toEqual({
      reason: 'start-timeout',
      detail: 'apply failed: web: not ready within 30s',
      unit: 'web.service',
      journal: ['boom'],
    });
  });

  it('is in-sync again once a later report shows the desired image ready', () => {
    expect(computeCompliance(device({ events: [failedApply] })).state).toBe('in-sync');
  });

  it('does not blame a service an apply failure does not name', () => {
    const result = computeCompliance(
      device({
        desired: {
          generation: 3,
          services: [
            { name: 'web', image: WEB_18 },
            { name: 'db', image: 'db:2' },
          ],
        },
        reported: {
          generation: 3,
          services: [running(WEB_14), running('db:1', { name: 'db' })],
        },
        events: [failedApply],
      }),
    );
    expect(result.services.map((s) => s.state)).toEqual(['failed', 'drifted']);
  });

  it('is failed, never in-sync, when the desired image crash-loops', () => {
    const result = computeCompliance(
      device({
        reported: {
          generation: 3,
          services: [
            running(WEB_18, { ready: false, health: 'crash-looping', reason: '5 restarts in 60s' }),
          ],
        },
      }),
    );
    expect(result.state).toBe('failed');
    expect(result.services[0]!.failure).toEqual({
      reason: 'crashed-after-start',
      detail: '5 restarts in 60s',
    });
  });

  it('is failed when the desired image runs unhealthy', () => {
    const result = computeCompliance(
      device({
        reported: {
          generation: 3,
          services: [running(WEB_18, { ready: false, health: 'unhealthy' })],
        },
      }),
    );
    expect(result.services[0]!.failure?.reason).toBe('unhealthy');
  });

  it('is rolled-back when the agent rolled the service back for this generation', () => {
    const result = computeCompliance(
      device({
        reported: { generation: 3, services: [running(WEB_14)] },
        events: [
          { type: 'apply', generation: 3, result: 'applied', services: [] },
          { type: 'rollback', service: 'web', generation: 3, trigger: 'health' },
        ],
      }),
    );
    expect(result.state).toBe('rolled-back');
  });

  it('is rolled-back when auto-update rejected the newest digest of the desired tag', () => {
    const result = computeCompliance(
      device({
        reported: {
          generation: 3,
          services: [running(WEB_18, { rejected: { image: WEB_18 } })],
        },
      }),
    );
    expect(result.state).toBe('rolled-back');
  });

  it('is updating while the device has not applied the desired generation', () => {
    const result = computeCompliance(
      device({ reported: { generation: 2, services: [running(WEB_14)] } }),
    );
    expect(result.state).toBe('updating');
  });

  it('is updating while the desired image is starting', () => {
    const result = computeCompliance(
      device({
        reported: {
          generation: 3,
          services: [running(WEB_18, { ready: false, health: 'starting' })],
        },
      }),
    );
    expect(result.state).toBe('updating');
  });

  it('is drifted when a service is stopped, missing, or not asked for', () => {
    const stopped = device({
      reported: {
        generation: 3,
        services: [running(WEB_18, { ready: false, health: 'stopped', imageId: undefined })],
      },
    });
    expect(computeCompliance(stopped).state).toBe('drifted');
    const missing = device({ reported: { generation: 3, services: [] } });
    expect(computeCompliance(missing).state).toBe('drifted');
    const extra = device({
      reported: { generation: 3, services: [running(WEB_18), running('x:1', { name: 'x' })] },
    });
    expect(computeCompliance(extra).services[1]).toMatchObject({
      service: 'x',
      state: 'drifted',
      desired: null,
    });
  });

  it('is offline whenever the device is offline, whatever it last reported', () => {
    const result = computeCompliance(device({ online: false, events: [failedApply] }));
    expect(result.state).toBe('offline');
    expect(result.services.map((s) => s.state)).toEqual(['offline']);
  });

  it('is unknown without a manifest or a state report', () => {
    expect(computeCompliance(device({ desired: null })).state).toBe('unknown');
    expect(computeCompliance(device({ reported: null })).state).toBe('unknown');
  });

  it('is in-sync for an empty manifest the device applied', () => {
    const result = computeCompliance(
      device({
        desired: { generation: 1, services: [] },
        reported: { generation: 1, services: [] },
      }),
    );
    expect(result).toEqual({ state: 'in-sync', services: [] });
  });

  it('compares digest pins by the reference the unit runs under', () => {
    const pinned = `registry.example/acme/web@sha256:${'b'.repeat(64)}`;
    const result = computeCompliance(
      device({
        desired: { generation: 4, services: [{ name: 'web', image: pinned }] },
        reported: { generation: 4, services: [running(WEB_18)] },
      }),
    );
    expect(result.state).toBe('drifted');
  });
});

describe('worstOf', () => {
  it('takes the worst state, in-sync when there is none', () => {
    expect(worstOf(['in-sync', 'updating', 'failed', 'drifted'])).toBe('failed');
    expect(worstOf([])).toBe('in-sync');
  });
});
