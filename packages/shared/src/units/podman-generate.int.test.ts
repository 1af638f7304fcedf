// Podman 4.3's own `podman generate systemd --new` against our `service` rendering: the same
// container is created with exactly our podman options, Podman writes its unit, and the two files
// must be equal byte for byte once the intentional differences (lab/service-differences.ts) are
// applied. Runs on the host's Podman with a private store under the test cache.
import { beforeAll, describe, expect, it } from 'vitest';
import { ServiceSpec } from '../spec/service-spec.js';
import { specFixtures } from './fixtures.js';
import { generateSystemdUnit } from './lab/podman-generate.js';
import { LAB_IMAGE, type PodmanLab, openPodmanLab } from './lab/podman-lab.js';
import { intentionalDifferences } from './lab/service-differences.js';
import type { CommandResult } from './lab/run.js';
import { labSpecFor } from './lab/stand-ins.js';
import { readUnits } from './lab/systemd-reading.js';
import { podmanRunArgs, podmanRunOptions } from './podman-args.js';
import { renderUnits } from './render.js';
import { UnitSyntaxError, parseUnitFile, splitExecLine, unitValues } from './systemd-syntax.js';

/** The keys the issue names, compared one by one before the whole file (clearer failures). */
const COMPARED_KEYS: [section: string, key: string][] = [
  ['Unit', 'Description'],
  ['Unit', 'Documentation'],
  ['Unit', 'Wants'],
  ['Unit', 'After'],
  ['Unit', 'RequiresMountsFor'],
  ['Service', 'Type'],
  ['Service', 'NotifyAccess'],
  ['Service', 'Restart'],
  ['Service', 'StartLimitBurst'],
  ['Service', 'TimeoutStartSec'],
  ['Service', 'TimeoutStopSec'],
  ['Service', 'ExecStartPre'],
  ['Service', 'ExecStop'],
  ['Service', 'ExecStopPost'],
  ['Install', 'WantedBy'],
];

let lab: PodmanLab;

function readExecStart(values: string[]): string[][] | UnitSyntaxError {
  try {
    return values.map(splitExecLine);
  } catch (error) {
    if (error instanceof UnitSyntaxError) return error;
    throw error;
  }
}

/** `podman create` that is expected to fail; a container it does create is removed again. */
function tryCreate(args: string[]): Promise<CommandResult> {
  return lab.exclusive(async () => {
    const result = await lab.podman(['create', ...args]);
    if (result.code === 0) await lab.podmanOk(['rm', '--force', result.stdout.trim()]);
    return result;
  });
}

beforeAll(async () => {
  lab = await openPodmanLab();
});

describe('podman generate systemd --new (Podman 4.3)', () => {
  for (const fixture of specFixtures.filter((f) => f.podman43 !== false)) {
    it(`writes the same unit as our service rendering for "${fixture.title}"`, async () => {
      const { spec, standIns } = await labSpecFor(lab, ServiceSpec.parse(fixture.spec));
      const runArgs = podmanRunArgs(spec);
      const options = podmanRunOptions(spec);
      // Podman's unit takes Restart= from the container's policy, then drops the flag.
      const createArgs = [...options, '--restart', spec.restart, ...runArgs.slice(options.length)];
      const generated = await generateSystemdUnit(lab, {
        name: spec.name,
        createArgs,
        startTimeout: spec.ready.timeout,
      });
      // generate rewrites the recorded create argv: a stand-in flag value flows through verbatim.
      expect(generated.createCommand).toEqual(['podman', 'create', ...createArgs]);

      const ours = renderUnits(spec, { style: 'service' }).find(
        (file) => file.name === `${spec.name}.service`,
      )!.contents;
      const applied = intentionalDifferences.filter((difference) => difference.applies(spec));
      let texts: [string, string] = [ours, generated.unit];
      for (const difference of applied) texts = difference.normalise(texts, spec);
      const [oursEntries, podmanEntries] = texts.map((text) => parseUnitFile(text));
      const podmanStart = readExecStart(unitValues(podmanEntries!, 'Service', 'ExecStart'));
      if (podmanStart instanceof UnitSyntaxError) {
        // Podman's unit is the broken one (ours reads back as the argv Podman was given); the
        // byte comparison below then proves that everything else is equal.
        expect(
          applied.some((d) => d.podmanExecStartWrong),
          podmanStart.message,
        ).toBe(true);
        const oursArgv = splitExecLine(unitValues(parseUnitFile(ours), 'Service', 'ExecStart')[0]!);
        expect(oursArgv.slice(-runArgs.length)).toEqual(runArgs);
      } else {
        const oursStart = unitValues(oursEntries!, 'Service', 'ExecStart').map(splitExecLine);
        expect.soft(oursStart, 'ExecStart argv').toEqual(podmanStart);
      }
      for (const [section, key] of COMPARED_KEYS) {
        expect
          .soft(unitValues(oursEntries!, section, key), `[${section}] ${key}`)
          .toEqual(unitValues(podmanEntries!, section, key));
      }
      expect(texts[0], `whole file (stand-ins: ${standIns.join('; ') || 'none'})`).toBe(texts[1]);
    });
  }

  for (const fixture of specFixtures.filter((f) => f.podman43 === false)) {
    it(`cannot create "${fixture.title}", as its podman43: false mark says`, async () => {
      const { spec } = await labSpecFor(lab, ServiceSpec.parse(fixture.spec));
      const refused = await tryCreate(podmanRunArgs(spec));
      expect(refused.code, refused.stderr).not.toBe(0);
    });
  }

  // What the schema refuses and why (docs/decisions/001-unit-rendering.md): Podman takes a line
  // break in an env value but writes it raw, so systemd reads its own unit back without the value.
  it.each([
    ['line feed', 'a\nb'],
    ['carriage return', 'a\rb'],
  ])(
    'writes a %s in an env value raw, so that systemd reads its unit with the value cut',
    async (_, value) => {
      const generated = await generateSystemdUnit(lab, {
        name: 'linebreak',
        createArgs: ['--name', 'linebreak', '-e', `BREAK=${value}`, LAB_IMAGE],
        startTimeout: 60,
      });
      expect(generated.createCommand).toContain(`BREAK=${value}`);
      const readings = await readUnits(
        [{ name: 'linebreak.service', contents: generated.unit }],
        'linebreak.service',
      );
      const argv = readings.get('linebreak.service')!.exec.ExecStart![0]!;
      expect(argv).toContain('BREAK=a');
      expect(argv).not.toContain(`BREAK=${value}`);
    },
  );

  it('refuses --init with --systemd=always, so the stand-in for that fixture drops init', async () => {
    const refused = await tryCreate(['--init', '--systemd=always', LAB_IMAGE]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cannot use container-init binary with systemd=always');
  });
});
