// systemd's own reading of the units a device gets (systemd 252, the host's, in test mode): the
// podman command it would run must be exactly the one the spec means, argument for argument, and a
// socket must listen exactly where the spec says. `systemd-analyze verify` only proves that a unit
// loads; this proves what it loads as. For the quadlet style the service is Quadlet's (Podman 5.4).
import { beforeAll, describe, expect, it } from 'vitest';
import { ServiceSpec } from '../spec/service-spec.js';
import { specFixtures } from './fixtures.js';
import { installedUnits } from './lab/installed-units.js';
import { parsePodmanRun, specOptions } from './lab/podman-command.js';
import { asExecuted, readUnits } from './lab/systemd-reading.js';
import { trixieRootfs } from './lab/trixie-rootfs.js';
import { podmanRunArgs } from './podman-args.js';
import type { UnitStyle } from './render.js';
import { escapeExecArg } from './systemd-syntax.js';

const STYLES: UnitStyle[] = ['service', 'quadlet'];

let rootfs: string;

beforeAll(async () => {
  rootfs = await trixieRootfs();
});

describe('systemd reads our units as the spec means them', () => {
  for (const fixture of specFixtures) {
    for (const style of STYLES) {
      it(`runs exactly the intended podman command for the ${style} units of "${fixture.title}"`, async () => {
        // System scope: the user manager's test mode needs a user session; argv does not differ.
        const spec = { ...ServiceSpec.parse(fixture.spec), scope: 'system' as const };
        const units = await installedUnits(rootfs, spec, style);
        const readings = await readUnits(units, `${spec.name}.service`);

        const starts = readings.get(`${spec.name}.service`)?.exec.ExecStart;
        expect(starts, 'one ExecStart command').toHaveLength(1);
        const theirs = parsePodmanRun(starts![0]!.map(asExecuted));
        const intended = parsePodmanRun(['podman', 'run', ...podmanRunArgs(spec)]);
        // Our service unit keeps the spec's option order; Quadlet orders options its own way.
        const order = style === 'service' ? (o: string[]) => o : (o: string[]) => [...o].sort();
        expect(order(specOptions(theirs)), 'podman options').toEqual(order(specOptions(intended)));
        expect(theirs.image, 'image').toBe(intended.image);
        expect(theirs.command, 'command').toEqual(intended.command);

        const socket = readings.get(`${spec.name}.socket`);
        if (spec.socket) expect(socket?.listen, 'ListenStream').toEqual(spec.socket.listen);
        else expect(socket).toBeUndefined();
      });
    }
  }

  it('reads a line ending in an escaped backslash as a whole line, and %i as nothing', async () => {
    const unit = {
      name: 'probe.service',
      contents: [
        '[Service]',
        'ExecStart=/bin/echo "a b\\\\" c\\\\ %i ;%i',
        'ExecStop=/bin/echo d\\\\\\\\',
        'ExecStopPost=/bin/echo "\u00a0" e\u0085',
        '',
      ].join('\n'),
    };
    const exec = (await readUnits([unit], 'probe.service')).get('probe.service')!.exec;
    expect(exec.ExecStart).toEqual([['/bin/echo', 'a b\\', 'c\\', '', ';']]);
    expect(exec.ExecStop).toEqual([['/bin/echo', 'd\\\\']]);
    expect(exec.ExecStopPost).toEqual([['/bin/echo', '\u00a0', 'e\u0085']]);
  });

  it('reads the escapes of a word quoted as Podman quotes it as the characters', async () => {
    const word = 'tab\t nbsp\u00a0 tag\u{e0001}';
    const unit = {
      name: 'probe.service',
      contents: `[Service]\nExecStart=/bin/echo ${escapeExecArg(word)}\n`,
    };
    expect(unit.contents).toContain('"tab\\t nbsp\\u00a0 tag\\U000e0001"');
    const exec = (await readUnits([unit], 'probe.service')).get('probe.service')!.exec;
    expect(exec.ExecStart).toEqual([['/bin/echo', word]]);
  });
});
