import { describe, expect, it } from 'vitest';
import { renderUnits, ServiceSpec } from '@podfleet/shared';
import type { UnitStatus } from '../host/host-driver.js';
import type { HostSnapshot } from '../reconcile/snapshot.js';
import type { AppliedRecord } from '../state/applied-record.js';
import { driftEvents, findDrift } from './drift.js';
import { VirtualClock } from '../clock/clock.js';

const spec = ServiceSpec.parse({ name: 'web', image: 'registry.example/acme/web:1' });
const files = renderUnits(spec, { style: 'quadlet' });
const record: AppliedRecord = {
  generation: 4,
  style: 'quadlet',
  services: [{ spec, files }],
  failed: [],
};
const status = (unit: string, active: UnitStatus['active'], sub: string): UnitStatus => ({
  unit,
  load: 'loaded',
  active,
  sub,
  result: 'success',
  restarts: 0,
  mainPid: active === 'active' ? 7 : 0,
  fileState: 'generated',
  needsReload: false,
});

describe('findDrift', () => {
  it('finds nothing when the host runs what was applied', () => {
    const snapshot: HostSnapshot = {
      files,
      units: { 'web.service': status('web.service', 'active', 'running') },
      images: {},
    };
    expect(findDrift(snapshot, record)).toEqual([]);
    expect(findDrift(snapshot, undefined)).toEqual([]);
  });

  it('names a removed or edited file, a foreign file and a unit that is down', () => {
    const snapshot: HostSnapshot = {
      files: [{ kind: 'systemd', name: 'web.service', contents: '[Service]\n' }],
      units: { 'web.service': status('web.service', 'failed', 'failed') },
      images: {},
    };
    expect(findDrift(snapshot, record)).toEqual([
      {
        service: 'web',
        expected: 'web.service running the units of generation 4',
        observed: "web.container missing, web.service not podfleet's, web.service failed/failed",
      },
    ]);
    const edited = { ...snapshot, files: [{ ...files[0]!, contents: `${files[0]!.contents}#\n` }] };
    expect(findDrift(edited, record)[0]?.observed).toBe(
      'web.container changed on disk, web.service failed/failed',
    );
  });

  it('turns repairs into drift events: reconciled when repaired, reported when not', () => {
    const source = { device: 'dev-1', clock: new VirtualClock(), newId: () => 'id' };
    const findings = [{ service: 'web', expected: 'e', observed: 'o' }];
    expect(
      driftEvents(findings, [{ name: 'web', image: 'i', action: 'repaired' }], source),
    ).toMatchObject([
      { type: 'drift', service: 'web', expected: 'e', observed: 'o', action: 'reconciled' },
    ]);
    expect(
      driftEvents(findings, [{ name: 'web', image: 'i', action: 'failed' }], source),
    ).toMatchObject([{ action: 'reported' }]);
    expect(driftEvents([], [{ name: 'api', image: 'i', action: 'installed' }], source)).toEqual([]);
  });
});
