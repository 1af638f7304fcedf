import { describe, expect, it } from 'vitest';
import { ServiceSpec } from '../spec/service-spec.js';
import { specFixtures } from './fixtures.js';
import { podmanRunArgs } from './podman-args.js';
import { renderUnits, unitDirectory, unitStyleFor } from './render.js';
import { parseUnitFile, splitExecLine, unitValues } from './systemd-syntax.js';

const slug = (title: string) =>
  title
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();

function unit(spec: Parameters<typeof renderUnits>[0], style: 'service' | 'quadlet', name: string) {
  const file = renderUnits(spec, { style }).find((f) => f.name === name);
  if (!file) throw new Error(`no ${name}`);
  return parseUnitFile(file.contents);
}

describe('golden units', () => {
  for (const { title, spec } of specFixtures) {
    for (const style of ['service', 'quadlet'] as const) {
      it(`renders "${title}" as ${style} exactly as recorded`, async () => {
        for (const file of renderUnits(spec, { style })) {
          await expect(file.contents).toMatchFileSnapshot(
            `__golden__/${slug(title)}/${style}/${file.name}`,
          );
        }
      });
    }
  }
});

describe('renderUnits', () => {
  it('is deterministic: the same spec gives the same bytes whatever the key order', () => {
    const spec = specFixtures[1]!.spec;
    const reversed = Object.fromEntries(Object.entries(spec).reverse()) as typeof spec;
    reversed.env = Object.fromEntries(Object.entries(spec.env ?? {}).reverse());
    for (const style of ['service', 'quadlet'] as const) {
      expect(renderUnits(reversed, { style })).toEqual(renderUnits(spec, { style }));
    }
  });

  it('runs the spec through podman run with the boilerplate of podman generate systemd --new', () => {
    const spec = specFixtures[1]!.spec;
    const [execStart] = unitValues(unit(spec, 'service', 'web.service'), 'Service', 'ExecStart');
    expect(splitExecLine(execStart!)).toEqual([
      '/usr/bin/podman',
      'run',
      '--cidfile={%t}/{%n}.ctr-id',
      '--cgroups=no-conmon',
      '--rm',
      '-d',
      '--replace',
      ...podmanRunArgs(ServiceSpec.parse(spec)),
    ]);
  });

  it('passes values through unchanged: %, $, quotes and backslashes survive systemd', () => {
    const spec = specFixtures[1]!.spec;
    const argv = splitExecLine(
      unitValues(unit(spec, 'service', 'web.service'), 'Service', 'ExecStart')[0]!,
    );
    expect(argv).toContain('PERCENT=50%');
    expect(argv).toContain('DOLLAR=$HOME and ${PATH}');
    expect(argv).toContain('BACKSLASH=a\\b');
    expect(argv.slice(-3)).toEqual(['/bin/sh', '-c', 'echo "hi there"; exec httpd -f']);
  });

  it.each([
    ['no', 'no', undefined],
    ['on-failure', 'on-failure', undefined],
    ['on-failure:5', 'on-failure', '5'],
    ['always', 'always', undefined],
    ['unless-stopped', 'always', undefined],
  ])(
    'maps restart %s to Restart=%s (StartLimitBurst=%s) in both styles',
    (restart, systemd, burst) => {
      const spec = { name: 'web', image: 'localhost/web:1', restart };
      for (const [style, name] of [
        ['service', 'web.service'],
        ['quadlet', 'web.container'],
      ] as const) {
        const entries = unit(spec, style, name);
        expect(unitValues(entries, 'Service', 'Restart')).toEqual([systemd]);
        expect(unitValues(entries, 'Service', 'StartLimitBurst')).toEqual(burst ? [burst] : []);
      }
    },
  );

  it('gives the stop timeout to ExecStop, ExecStopPost and TimeoutStopSec (+60 s, as Podman does)', () => {
    const entries = unit(
      { name: 'web', image: 'localhost/web:1', stopTimeout: 25 },
      'service',
      'web.service',
    );
    expect(unitValues(entries, 'Service', 'TimeoutStopSec')).toEqual(['85']);
    expect(splitExecLine(unitValues(entries, 'Service', 'ExecStop')[0]!)).toEqual([
      '/usr/bin/podman', 'stop', '--ignore', '-t', '25', '--cidfile={%t}/{%n}.ctr-id',
    ]); // prettier-ignore
  });

  it('gates start on the ready timeout with Type=notify and NotifyAccess=all', () => {
    const entries = unit(
      { name: 'web', image: 'localhost/web:1', ready: { timeout: '2m' } },
      'service',
      'web.service',
    );
    expect(unitValues(entries, 'Service', 'TimeoutStartSec')).toEqual(['120']);
    expect(unitValues(entries, 'Service', 'Type')).toEqual(['notify']);
    expect(unitValues(entries, 'Service', 'NotifyAccess')).toEqual(['all']);
  });

  it.each([
    ['conmon', '--sdnotify=conmon', undefined],
    ['container', '--sdnotify=container', 'true'],
  ] as const)('notify %s → %s, Quadlet Notify=%s', (notify, flag, quadlet) => {
    const spec = { name: 'web', image: 'localhost/web:1', notify };
    const argv = splitExecLine(
      unitValues(unit(spec, 'service', 'web.service'), 'Service', 'ExecStart')[0]!,
    );
    expect(argv.filter((a) => a.startsWith('--sdnotify'))).toEqual([flag]);
    expect(unitValues(unit(spec, 'quadlet', 'web.container'), 'Container', 'Notify')).toEqual(
      quadlet ? [quadlet] : [],
    );
  });

  it('installs system units for multi-user.target and user units for default.target', () => {
    const system = unit({ name: 'web', image: 'localhost/web:1' }, 'service', 'web.service');
    const user = unit(
      { name: 'web', image: 'localhost/web:1', scope: 'user' },
      'service',
      'web.service',
    );
    expect(unitValues(system, 'Install', 'WantedBy')).toEqual(['multi-user.target default.target']);
    expect(unitValues(user, 'Install', 'WantedBy')).toEqual(['default.target']);
    expect(
      renderUnits(
        { name: 'web', image: 'localhost/web:1' },
        { style: 'quadlet', scope: 'user' },
      )[0]!.contents,
    ).toContain('WantedBy=default.target\n');
  });

  it('socket activation: NAME.socket is PartOf the service, which has no [Install] of its own', () => {
    const spec = {
      name: 'echo',
      image: 'localhost/echo:1',
      socket: { listen: ['127.0.0.1:8080', '/run/a%b.sock'] },
    };
    for (const style of ['service', 'quadlet'] as const) {
      const files = renderUnits(spec, { style });
      expect(files.map((f) => f.name)).toEqual([
        style === 'service' ? 'echo.service' : 'echo.container',
        'echo.socket',
      ]);
      const main = parseUnitFile(files[0]!.contents);
      expect(unitValues(main, 'Install', 'WantedBy')).toEqual([]);
      expect(unitValues(main, 'Unit', 'Requires')).toEqual(['echo.socket']);
      const socket = parseUnitFile(files[1]!.contents);
      expect(unitValues(socket, 'Unit', 'PartOf')).toEqual(['echo.service']);
      expect(unitValues(socket, 'Socket', 'ListenStream')).toEqual([
        '127.0.0.1:8080',
        '/run/a%%b.sock',
      ]);
      expect(unitValues(socket, 'Install', 'WantedBy')).toEqual(['sockets.target']);
    }
  });

  it('runs a systemd-mode container with --systemd=always (Podman sets StopSignal SIGRTMIN+3)', () => {
    const spec = { name: 'sd', image: 'localhost/sd:1', systemd: 'always' as const };
    const argv = splitExecLine(
      unitValues(unit(spec, 'service', 'sd.service'), 'Service', 'ExecStart')[0]!,
    );
    expect(argv).toContain('--systemd=always');
    expect(unitValues(unit(spec, 'quadlet', 'sd.container'), 'Container', 'PodmanArgs')).toEqual([
      '--systemd=always',
    ]);
  });

  it('moves a lone ; health command out of Quadlet’s HealthCmd=, which would write it bare', () => {
    const spec = { name: 'web', image: 'localhost/web:1', health: { cmd: ';' } };
    const entries = unit(spec, 'quadlet', 'web.container');
    expect(unitValues(entries, 'Container', 'HealthCmd')).toEqual([]);
    expect(unitValues(entries, 'Container', 'PodmanArgs')).toEqual(['--health-cmd ;%i']);
  });

  it('moves a health command that Quadlet would strip quotes from into PodmanArgs', () => {
    const spec = { name: 'web', image: 'localhost/web:1', health: { cmd: 'curl -f "localhost/"' } };
    const entries = unit(spec, 'quadlet', 'web.container');
    expect(unitValues(entries, 'Container', 'HealthCmd')).toEqual([]);
    expect(splitExecLine(unitValues(entries, 'Container', 'PodmanArgs')[0]!)).toEqual([
      '--health-cmd',
      'curl -f "localhost/"',
    ]);
  });
});

describe('unit placement and style', () => {
  it('chooses Quadlet from Podman 4.4 on', () => {
    expect(unitStyleFor('4.3.1')).toBe('service');
    expect(unitStyleFor('podman version 4.4.0')).toBe('quadlet');
    expect(unitStyleFor('5.4.2')).toBe('quadlet');
    expect(() => unitStyleFor('unknown')).toThrow(/not a Podman version/);
  });

  it('installs each kind of file where systemd and Quadlet look for it', () => {
    expect(unitDirectory('systemd', 'system')).toBe('/etc/systemd/system');
    expect(unitDirectory('quadlet', 'system')).toBe('/etc/containers/systemd');
    expect(unitDirectory('systemd', 'user')).toBe('.config/systemd/user');
    expect(unitDirectory('quadlet', 'user')).toBe('.config/containers/systemd');
  });
});
