import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServiceSpec, type ServiceSpecInput } from '../spec/service-spec.js';
import { formatIssues, unitTextProblem } from '../spec/text.js';
import { podmanRunArgs, systemdRestart } from './podman-args.js';
import { renderUnits } from './render.js';
import {
  QUADLET_BLANK,
  parseUnitFile,
  splitExecLine,
  type UnitFileEntry,
} from './systemd-syntax.js';

// Random strings in every free-text field of a ServiceSpec that the schema accepts, rendered in
// both unit styles: each unit must read back (as systemd reads it, or Quadlet for a .container) as
// exactly the keys the renderer means to write, and every Exec-style value as exactly the intended
// argv. A value that opened a new line, a quote, a specifier or a variable would show up as an
// extra key, an extra or changed argv element, or a `{%x}` / `{$X}` marker.

/**
 * Characters that mean something to systemd, to Quadlet or to a shell, and some that merely look
 * odd: Unicode blanks (systemd splits and strips only space, tab, CR and LF; Quadlet trims Go's
 * Unicode blanks from every line) and backslashes, one or two, anywhere including at the end.
 */
const SHARP = [
  ' ', '\t', '"', "'", '\\', '\\\\', '%', '$', ';', '=', '[', ']', '#', '{', '}', '`', '&', '|',
  '>', '-', '--', '%n', '%i', '%%', '$$', '${A}', '$A', '\\n', '\\x41', '\u0085', '\u00a0', '\u2028',
  '\u3000', '\ufeff', 'é', '😀',
]; // prettier-ignore

const char = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...SHARP) },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
);
/**
 * A string the schema takes as unit text (no line breaks or control characters); with `tab`, as
 * one word of a command line (env and label values, command arguments), where a tab is allowed.
 */
const text = (minLength = 0, options: { tab?: boolean } = {}) =>
  fc
    .array(char, { minLength, maxLength: 12 })
    .map((parts) => parts.join(''))
    .filter((value) => unitTextProblem(value, options) === undefined);
const word = () => text(0, { tab: true });
/** A path without blanks, for volumes and socket paths. */
const path = text(1).map((value) => `/${value.replace(/\s/g, '_')}`);

const specInput: fc.Arbitrary<ServiceSpecInput> = fc.record(
  {
    name: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
    image: fc.stringMatching(/^[a-z0-9]{1,8}\.example\/[a-z0-9]{1,10}:\w[\w.-]{0,20}$/),
    command: fc.array(word(), { minLength: 1, maxLength: 5 }),
    env: fc.dictionary(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), word(), {
      maxKeys: 4,
    }),
    labels: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,8}$/), word(), {
      maxKeys: 4,
    }),
    ports: fc.array(
      fc.constantFrom('8080:80', '127.0.0.1:53:53/udp', '[::1]:9000:9000/tcp', ':443', '1-3:1-3'),
      { maxLength: 3 },
    ),
    volumes: fc.array(
      fc
        .tuple(fc.oneof(path, fc.constantFrom('data', 'cache.v1')), path, fc.boolean())
        .map(([source, destination, z]) => `${source}:${destination}${z ? ':Z,ro' : ''}`),
      { maxLength: 3 },
    ),
    restart: fc.constantFrom('no', 'on-failure', 'on-failure:5', 'always', 'unless-stopped'),
    stopTimeout: fc.integer({ min: 0, max: 600 }),
    health: fc.record({ cmd: text(1), retries: fc.integer({ min: 1, max: 9 }) }),
    autoUpdate: fc.constantFrom('registry', 'local', 'off'),
    systemd: fc.constantFrom<boolean | 'always'>(true, false, 'always'),
    notify: fc.constantFrom('conmon', 'container', 'healthy'),
    init: fc.boolean(),
    ready: fc.record({ timeout: fc.integer({ min: 1, max: 600 }), settle: fc.nat(60) }),
    logDriver: fc.constantFrom('journald', 'k8s-file', 'none'),
    scope: fc.constantFrom('system', 'user'),
    socket: fc.record({
      listen: fc.array(fc.oneof(path, fc.constantFrom('8080', '127.0.0.1:80', '[::1]:53')), {
        minLength: 1,
        maxLength: 3,
      }),
    }),
  },
  { requiredKeys: ['name', 'image'] },
);

/** Specs the schema accepts, with every default filled in. */
const specs = specInput
  .map((input) => ServiceSpec.safeParse(input))
  .filter((result) => result.success)
  .map((result) => result.data!);

/** 250 runs per style by default; PODFLEET_FUZZ_RUNS=5000 for a longer search. */
const RUNS = { numRuns: Number(process.env.PODFLEET_FUZZ_RUNS ?? 250) };
/** vitest's timeout per property, grown with the runs (about 1.2 ms per run on one core). */
const TIMEOUT = 5_000 + RUNS.numRuns * 10;

/**
 * A value systemd reads with specifiers (and, in ExecStart, `$`) but no splitting: `%%` → `%`, `$$`
 * → `$`, and a final `%i` → nothing (the instance, empty in a unit that is not a template), which
 * the renderer adds after a trailing backslash or blank. Any other specifier is an escaping bug.
 */
function unescapeRaw(value: string, dollars: boolean): string {
  let out = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%' && value[i + 1] === 'i' && i + 2 === value.length) break;
    if (c === '%' || (dollars && c === '$')) {
      if (value[i + 1] !== c) throw new Error(`unescaped ${c}${value[i + 1] ?? ''} in ${value}`);
      i++;
    }
    out += c;
  }
  return out;
}

const keysOf = (entries: UnitFileEntry[]) => entries.map((e) => `${e.section}.${e.key}`);
const only = (entries: UnitFileEntry[], section: string, key: string) => {
  const values = entries.filter((e) => e.section === section && e.key === key);
  expect(values).toHaveLength(1);
  return values[0]!.value;
};
const all = (entries: UnitFileEntry[], section: string, key: string) =>
  entries.filter((e) => e.section === section && e.key === key).map((e) => e.value);

/**
 * What Quadlet's Lookup makes of a single-value key such as HealthCmd= (Podman 5.4): Unicode blanks
 * trimmed from the end, a quote at either end stripped. Values the renderer writes never have them.
 */
function quadletLookup(value: string): string {
  let end = value.length;
  while (end > 0 && QUADLET_BLANK.test(value[end - 1]!)) end--;
  return value.slice(0, end).replace(/^["']|["']$/g, '');
}

function socketKeys(spec: ServiceSpec) {
  return spec.socket ? ['Unit.Requires', 'Unit.After'] : [];
}

function checkSocketUnit(spec: ServiceSpec, contents: string | undefined): void {
  if (!spec.socket) return expect(contents).toBeUndefined();
  const entries = parseUnitFile(contents!);
  expect(keysOf(entries)).toEqual([
    'Unit.Description',
    'Unit.PartOf',
    ...spec.socket.listen.map(() => 'Socket.ListenStream'),
    'Install.WantedBy',
  ]);
  expect(all(entries, 'Socket', 'ListenStream').map((v) => unescapeRaw(v, false))).toEqual(
    spec.socket.listen,
  );
}

describe('rendered units read back as exactly what the spec says (fuzzed)', () => {
  it(
    'service style: the keys podman generate systemd writes, and ExecStart is the intended argv',
    () => {
      fc.assert(
        fc.property(specs, (spec) => {
          const [service, socket] = renderUnits(spec, { style: 'service' });
          const entries = parseUnitFile(service!.contents);
          const { startLimitBurst } = systemdRestart(spec.restart);
          expect(keysOf(entries)).toEqual([
            'Unit.Description',
            'Unit.Documentation',
            'Unit.Wants',
            'Unit.After',
            'Unit.RequiresMountsFor',
            ...socketKeys(spec),
            'Service.Environment',
            'Service.Restart',
            ...(startLimitBurst ? ['Service.StartLimitBurst'] : []),
            'Service.TimeoutStartSec',
            'Service.TimeoutStopSec',
            'Service.ExecStartPre',
            'Service.ExecStart',
            'Service.ExecStop',
            'Service.ExecStopPost',
            'Service.Type',
            'Service.NotifyAccess',
            ...(spec.socket ? [] : ['Install.WantedBy']),
          ]);
          const argv = splitExecLine(only(entries, 'Service', 'ExecStart'));
          const head = [
            '/usr/bin/podman',
            'run',
            '--cidfile={%t}/{%n}.ctr-id',
            '--cgroups=no-conmon',
          ];
          const boilerplate = [
            ...head,
            '--rm',
            ...(spec.notify === 'conmon' ? ['--sdnotify=conmon'] : []),
            '-d',
            '--replace',
          ];
          expect(argv).toEqual([...boilerplate, ...podmanRunArgs(spec)]);
          // The spec's own values, where an operator expects them: the command last, after the image.
          const command = spec.command ?? [];
          expect(argv.slice(argv.length - command.length - 1)).toEqual([spec.image, ...command]);
          for (const [key, value] of Object.entries(spec.env)) {
            expect(argv[argv.indexOf(`${key}=${value}`) - 1]).toBe('-e');
          }
          for (const [key, value] of Object.entries(spec.labels)) {
            expect(argv[argv.indexOf(`${key}=${value}`) - 1]).toBe('--label');
          }
          if (spec.health) expect(argv[argv.indexOf('--health-cmd') + 1]).toBe(spec.health.cmd);
          checkSocketUnit(spec, socket?.contents);
        }),
        RUNS,
      );
    },
    TIMEOUT,
  );

  it(
    'quadlet style: one key per thing the spec sets, each value reading back as written',
    () => {
      fc.assert(
        fc.property(specs, (spec) => {
          const [container, socket] = renderUnits(spec, { style: 'quadlet' });
          // Quadlet reads the .container; systemd's rules must read it alike (no line that the two
          // would join or trim differently).
          const entries = parseUnitFile(container!.contents, 'quadlet');
          expect(parseUnitFile(container!.contents, 'systemd')).toEqual(entries);
          const { startLimitBurst } = systemdRestart(spec.restart);
          const env = Object.keys(spec.env).sort();
          const labels = Object.keys(spec.labels).sort();
          // The renderer may move a health command Quadlet would misread into PodmanArgs=.
          const healthByArgs =
            spec.health !== undefined && all(entries, 'Container', 'HealthCmd').length === 0;
          const podmanArgs = spec.systemd !== undefined || healthByArgs;
          expect(keysOf(entries)).toEqual([
            'Unit.Description',
            ...socketKeys(spec),
            'Container.Image',
            'Container.ContainerName',
            ...(spec.command ? ['Container.Exec'] : []),
            ...env.map(() => 'Container.Environment'),
            ...spec.ports.map(() => 'Container.PublishPort'),
            ...spec.volumes.map(() => 'Container.Volume'),
            ...labels.map(() => 'Container.Label'),
            ...(spec.autoUpdate !== 'off' ? ['Container.AutoUpdate'] : []),
            ...(spec.notify !== 'conmon' ? ['Container.Notify'] : []),
            ...(spec.health
              ? [
                  ...(healthByArgs ? [] : ['Container.HealthCmd']),
                  'Container.HealthInterval',
                  'Container.HealthRetries',
                  'Container.HealthStartPeriod',
                ]
              : []),
            ...(spec.init ? ['Container.RunInit'] : []),
            ...(spec.logDriver ? ['Container.LogDriver'] : []),
            ...(spec.stopTimeout !== 10 ? ['Container.StopTimeout'] : []),
            ...(podmanArgs ? ['Container.PodmanArgs'] : []),
            'Service.Restart',
            ...(startLimitBurst ? ['Service.StartLimitBurst'] : []),
            'Service.TimeoutStartSec',
            'Service.TimeoutStopSec',
            ...(spec.socket ? [] : ['Install.WantedBy']),
          ]);
          expect(only(entries, 'Container', 'Image')).toBe(spec.image);
          if (spec.command) {
            // Quadlet's Exec= words; an empty or lone `;` word carries a `%i` that expands to nothing.
            const intended = spec.command.map((arg) =>
              arg === '' || arg === ';' ? `${arg}{%i}` : arg,
            );
            expect(splitExecLine(only(entries, 'Container', 'Exec'))).toEqual(intended);
          }
          const words = (key: string) => all(entries, 'Container', key).map(splitExecLine);
          expect(words('Environment')).toEqual(env.map((key) => [`${key}=${spec.env[key]}`]));
          expect(words('Label')).toEqual(labels.map((key) => [`${key}=${spec.labels[key]}`]));
          expect(all(entries, 'Container', 'PublishPort')).toEqual(spec.ports);
          const volumes = all(entries, 'Container', 'Volume').map((v) => unescapeRaw(v, true));
          expect(volumes).toEqual(spec.volumes);
          if (spec.health && !healthByArgs) {
            const cmd = only(entries, 'Container', 'HealthCmd');
            expect(unescapeRaw(quadletLookup(cmd), true)).toBe(spec.health.cmd);
            expect(cmd, 'Quadlet writes a lone ; bare into ExecStart').not.toBe(';');
          }
          if (podmanArgs) {
            const args = splitExecLine(only(entries, 'Container', 'PodmanArgs'));
            expect(args).toEqual([
              ...(healthByArgs
                ? ['--health-cmd', spec.health!.cmd === ';' ? ';{%i}' : spec.health!.cmd]
                : []),
              ...(spec.systemd !== undefined ? [`--systemd=${String(spec.systemd)}`] : []),
            ]);
          }
          checkSocketUnit(spec, socket?.contents);
        }),
        RUNS,
      );
    },
    TIMEOUT,
  );
});

// Found by the properties above (first as it.fails tests), now fixed: each example states what
// systemd or Quadlet reads, and stays as a plain regression test.
describe('values that used to end a line wrongly', () => {
  const spec = (input: Partial<ServiceSpecInput>) =>
    ServiceSpec.parse({ name: 'web', image: 'registry.example/web:1', ...input });
  const quadlet = (input: Partial<ServiceSpecInput>) =>
    parseUnitFile(renderUnits(spec(input), { style: 'quadlet' })[0]!.contents, 'quadlet');

  it('a volume ending in a backslash keeps the next Volume= line its own (Quadlet)', () => {
    const entries = quadlet({ volumes: ['/a:/b\\', '/c:/d'] });
    expect(all(entries, 'Container', 'Volume')).toEqual(['/a:/b\\%i', '/c:/d']);
    expect(all(entries, 'Container', 'Volume').map((v) => unescapeRaw(v, true))).toEqual([
      '/a:/b\\',
      '/c:/d',
    ]);
  });

  it('a socket path ending in a backslash keeps the next ListenStream= line its own', () => {
    const [, socket] = renderUnits(spec({ socket: { listen: ['/run/a\\', '/run/b'] } }), {
      style: 'service',
    });
    const listen = all(parseUnitFile(socket!.contents), 'Socket', 'ListenStream');
    expect(listen).toEqual(['/run/a\\%i', '/run/b']);
    expect(listen.map((v) => unescapeRaw(v, false))).toEqual(['/run/a\\', '/run/b']);
  });

  it('a health command with blanks at either end keeps them: it goes through PodmanArgs=', () => {
    const entries = quadlet({ health: { cmd: ' check ' } });
    expect(all(entries, 'Container', 'HealthCmd')).toEqual([]);
    expect(splitExecLine(only(entries, 'Container', 'PodmanArgs'))).toEqual([
      '--health-cmd',
      ' check ',
    ]);
  });

  it('an environment value ending in a backslash is quoted, so Quadlet does not join the next line', () => {
    const entries = quadlet({ env: { A: 'x\\' }, labels: { b: 'y' } });
    expect(all(entries, 'Container', 'Environment')).toEqual(['"A=x\\\\"']);
    expect(all(entries, 'Container', 'Label')).toEqual(['b=y']);
  });

  it('an argument ending in a Unicode blank is quoted, so Quadlet does not trim it', () => {
    const entries = quadlet({ command: ['/bin/echo', 'nbsp\u00a0'], labels: { nel: 'z\u0085' } });
    expect(splitExecLine(only(entries, 'Container', 'Exec'))).toEqual(['/bin/echo', 'nbsp\u00a0']);
    expect(splitExecLine(only(entries, 'Container', 'Label'))).toEqual(['nel=z\u0085']);
  });
});

describe('values the schema refuses (fuzzed)', () => {
  const FIELDS: [path: string, input: (value: string) => Partial<ServiceSpecInput>][] = [
    ['command[1]', (value) => ({ command: ['/bin/echo', value] })],
    ['env.A', (value) => ({ env: { A: value } })],
    ['labels.b', (value) => ({ labels: { b: value } })],
    ['volumes[0]', (value) => ({ volumes: [`/a:/b${value}`] })],
    ['health.cmd', (value) => ({ health: { cmd: `true${value}` } })],
    ['socket.listen[0]', (value) => ({ socket: { listen: [`/run/a${value}`] } })],
  ];

  it(
    'a line break, NUL or other control character anywhere fails, naming the field',
    () => {
      const breaking = fc
        .tuple(
          text(),
          fc.constantFrom('\n', '\r', '\r\n', '\0', '\v', '\f', '\x01', '\x1b', '\x7f'),
          text(),
        )
        .map(([before, bad, after]) => `${before}${bad}${after}`);
      fc.assert(
        fc.property(fc.constantFrom(...FIELDS), breaking, ([path, input], value) => {
          const result = ServiceSpec.safeParse({
            name: 'web',
            image: 'registry.example/web:1',
            ...input(value),
          });
          expect(result.success).toBe(false);
          const issues = formatIssues(result.error!);
          expect(
            issues.some(
              (issue) =>
                /^[^:]+: (newline|NUL|control character.*) not allowed$/.test(issue) &&
                issue.startsWith(`${path}: `),
            ),
            issues.join('\n'),
          ).toBe(true);
        }),
        RUNS,
      );
    },
    TIMEOUT,
  );
});
