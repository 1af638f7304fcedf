// The real Quadlet (Podman 5.4, from a Debian 13 rootfs built on first use) turns our `.container`
// files into services; the podman command it generates must carry the same options, image and
// command as our `service` rendering's ExecStart, and the [Service]/[Install] keys must match.
import { beforeAll, describe, expect, it } from 'vitest';
import { ServiceSpec } from '../spec/service-spec.js';
import { specFixtures } from './fixtures.js';
import { parsePodmanRun, specOptions } from './lab/podman-command.js';
import { quadletDryRun } from './lab/quadlet.js';
import { trixieRootfs } from './lab/trixie-rootfs.js';
import { type UnitScope, renderUnits } from './render.js';
import { type UnitFileEntry, parseUnitFile, splitExecLine, unitValues } from './systemd-syntax.js';

const SCOPES: UnitScope[] = ['system', 'user'];

let rootfs: string;

beforeAll(async () => {
  rootfs = await trixieRootfs();
});

/**
 * ExecStart as argv, with `%i` resolved: systemd expands it to nothing in a non-template unit. A bare
 * `;` would make systemd split the line into two commands, which splitExecLine does not model.
 */
function execStart(entries: UnitFileEntry[]): string[] {
  const values = unitValues(entries, 'Service', 'ExecStart');
  expect(values).toHaveLength(1);
  expect(values[0], 'ExecStart has a bare ; (a command separator)').not.toMatch(/(^|\s);(\s|$)/);
  return splitExecLine(values[0]!).map((word) => word.replaceAll('{%i}', ''));
}

const sorted = (values: string[]) => [...values].sort();

describe('Quadlet (Podman 5.4) on our .container files', () => {
  for (const fixture of specFixtures) {
    for (const scope of SCOPES) {
      it(`generates the podman command and keys of our service unit for "${fixture.title}" (${scope})`, async () => {
        const spec = { ...ServiceSpec.parse(fixture.spec), scope };
        const name = `${spec.name}.service`;
        const { units, complaints } = await quadletDryRun(
          rootfs,
          renderUnits(spec, { style: 'quadlet' }),
          scope,
        );
        expect(complaints).toEqual([]);
        const generated = units.get(name);
        expect(generated, `Quadlet wrote no ${name}`).toBeDefined();
        const theirs = parseUnitFile(generated!);
        const ours = parseUnitFile(
          renderUnits(spec, { style: 'service' }).find((file) => file.name === name)!.contents,
        );

        const theirRun = parsePodmanRun(execStart(theirs));
        const ourRun = parsePodmanRun(execStart(ours));
        expect(sorted(specOptions(theirRun)), 'podman options').toEqual(
          sorted(specOptions(ourRun)),
        );
        expect(theirRun.image, 'image').toBe(ourRun.image);
        expect(theirRun.command, 'command').toEqual(ourRun.command);

        for (const key of ['Restart', 'StartLimitBurst', 'TimeoutStartSec', 'TimeoutStopSec']) {
          expect
            .soft(unitValues(theirs, 'Service', key), key)
            .toEqual(unitValues(ours, 'Service', key));
        }
        expect(unitValues(theirs, 'Service', 'Type')).toEqual(['notify']);
        expect(unitValues(theirs, 'Service', 'NotifyAccess')).toEqual(['all']);
        expect(unitValues(theirs, 'Install', 'WantedBy'), 'WantedBy').toEqual(
          unitValues(ours, 'Install', 'WantedBy'),
        );
        if (spec.socket) {
          const socket = `${spec.name}.socket`;
          expect(unitValues(theirs, 'Unit', 'Requires')).toContain(socket);
          expect(unitValues(theirs, 'Unit', 'After')).toContain(socket);
        }
      });
    }
  }

  it('cuts Exec= at an empty word and writes a lone ; bare, which is why empty and ; words get %i', async () => {
    const container = (exec: string) => ({
      name: 'quirk.container',
      kind: 'quadlet' as const,
      contents: `[Container]\nImage=localhost/x:1\nExec=${exec}\n`,
    });
    const execOf = async (exec: string) => {
      const { units } = await quadletDryRun(rootfs, [container(exec)], 'system');
      return unitValues(parseUnitFile(units.get('quirk.service')!), 'Service', 'ExecStart')[0];
    };
    expect(await execOf('/bin/echo a "" b ";" c')).toMatch(/ localhost\/x:1 \/bin\/echo a$/);
    expect(await execOf('/bin/echo a ";" c')).toMatch(/ localhost\/x:1 \/bin\/echo a ; c$/);
    expect(await execOf('/bin/echo a %i b ;%i c')).toMatch(/ \/bin\/echo a %i b ;%i c$/);
  });
});
