// `systemd-analyze verify` (systemd 252, the host's) on every unit a device would get: our
// `service` style as rendered, and for the `quadlet` style the service Quadlet generates from our
// .container plus our .socket. verify runs a private manager in test mode; no systemd is started.
import { beforeAll, describe, expect, it } from 'vitest';
import { ServiceSpec } from '../spec/service-spec.js';
import { specFixtures } from './fixtures.js';
import { installedUnits } from './lab/installed-units.js';
import { verifyUnits } from './lab/systemd-verify.js';
import { trixieRootfs } from './lab/trixie-rootfs.js';
import type { UnitScope, UnitStyle } from './render.js';

const SCOPES: UnitScope[] = ['system', 'user'];
const STYLES: UnitStyle[] = ['service', 'quadlet'];

let rootfs: string;

beforeAll(async () => {
  rootfs = await trixieRootfs();
});

describe('systemd-analyze verify', () => {
  for (const fixture of specFixtures) {
    for (const style of STYLES) {
      for (const scope of SCOPES) {
        it(`accepts the ${style} units of "${fixture.title}" (${scope}) without a warning`, async () => {
          const spec = { ...ServiceSpec.parse(fixture.spec), scope };
          const units = await installedUnits(rootfs, spec, style);
          const result = await verifyUnits(units, scope);
          expect(result.aboutOurUnits, 'verify warnings about our units').toEqual([]);
          expect(result.code, result.lines.join('\n')).toBe(0);
        });
      }
    }
  }

  it('reports a unit systemd cannot load, and a mere warning, both naming the unit', async () => {
    const broken = {
      name: 'broken.service',
      contents: '[Service]\nType=notify\nExecStart=/usr/bin/podman run "unbalanced\n',
    };
    const warned = {
      name: 'warned.service',
      contents: '[Service]\nType=notify\nExecStart=/usr/bin/podman run x\nBogus=1\n',
    };
    const fatal = await verifyUnits([broken], 'system');
    expect(fatal.code).not.toBe(0);
    expect(fatal.aboutOurUnits.join('\n')).toContain('Unbalanced quoting');
    // A warning leaves the exit code at 0: only the lines tell.
    const warning = await verifyUnits([warned], 'system');
    expect(warning.code).toBe(0);
    expect(warning.aboutOurUnits.join('\n')).toMatch(/warned\.service:4: Unknown key 'Bogus'/);
  });
});
