import { describe, expect, it } from 'vitest';
import { ServiceSpec } from './service-spec.js';
import { formatIssues } from './text.js';

const base = { name: 'web', image: 'registry.example/acme/web:1.4' };

function problems(input: unknown): string[] {
  const result = ServiceSpec.safeParse(input);
  return result.success ? [] : formatIssues(result.error);
}

describe('ServiceSpec', () => {
  it('fills in the defaults of every optional field', () => {
    expect(ServiceSpec.parse(base)).toEqual({
      ...base,
      env: {},
      ports: [],
      volumes: [],
      labels: {},
      restart: 'on-failure',
      stopTimeout: 10,
      notify: 'conmon',
      ready: { timeout: 60, settle: 15 },
      autoUpdate: 'off',
      init: false,
      scope: 'system',
    });
  });

  it('parses durations into seconds', () => {
    const spec = ServiceSpec.parse({
      ...base,
      health: { cmd: 'true', interval: '1m30s', startPeriod: '500ms' },
      ready: { timeout: '2m', settle: 5 },
    });
    expect(spec.health).toEqual({ cmd: 'true', interval: 90, startPeriod: 0.5, retries: 3 });
    expect(spec.ready).toEqual({ timeout: 120, settle: 5 });
  });

  // prettier-ignore
  it.each([
    ['ready.timeout', { ready: { timeout: '168h' } }, { ready: { timeout: '168h0.001s' } }],
    ['ready.settle', { ready: { settle: 604_800 } }, { ready: { settle: 604_801 } }],
    ['health.interval', { health: { cmd: 'true', interval: '168h' } }, { health: { cmd: 'true', interval: 1e12 } }],
    ['health.startPeriod', { health: { cmd: 'true', startPeriod: '10080m' } }, { health: { cmd: 'true', startPeriod: '10081m' } }],
    ['health.timeout', { health: { cmd: 'true', timeout: 604_800 } }, { health: { cmd: 'true', timeout: 604_800.5 } }],
  ])('bounds %s at 7 days: accepts %j, refuses %j', (field, accepted, refused) => {
    expect(problems({ ...base, ...accepted })).toEqual([]);
    expect(problems({ ...base, ...refused })).toEqual([`${field}: must be at most 168h (7 days)`]);
  });

  it('bounds stopTimeout at a day (Podman --stop-timeout, seconds)', () => {
    expect(problems({ ...base, stopTimeout: 86_400 })).toEqual([]);
    expect(problems({ ...base, stopTimeout: 86_401 })).toEqual([
      'stopTimeout: Too big: expected number to be <=86400',
    ]);
  });

  it('is idempotent: a parsed spec parses to itself', () => {
    const spec = ServiceSpec.parse({ ...base, health: { cmd: 'true', interval: '10s' } });
    expect(ServiceSpec.parse(spec)).toEqual(spec);
  });

  it.each([
    [{ env: { GREETING: 'hello\nworld' } }, 'env.GREETING: newline not allowed'],
    [{ env: { GREETING: 'a\u0000b' } }, 'env.GREETING: NUL not allowed'],
    [{ env: { GREETING: 'a\vb' } }, 'env.GREETING: control character U+000B not allowed'],
    [{ env: { GREETING: 'a\fb' } }, 'env.GREETING: control character U+000C not allowed'],
    [{ env: { GREETING: 'a\x1b[2J' } }, 'env.GREETING: control character U+001B not allowed'],
    [{ labels: { team: 'a\x7f' } }, 'labels.team: control character U+007F not allowed'],
    [{ health: { cmd: 'true\t' } }, 'health.cmd: control character U+0009 not allowed'],
    [{ volumes: ['/a:/b\tc'] }, 'volumes[0]: control character U+0009 not allowed'],
    [
      { env: { GREETING: 'a\ud800' } },
      'env.GREETING: invalid Unicode (lone surrogate) not allowed',
    ],
    [{ command: ['/bin/sh', 'x\ry'] }, 'command[1]: newline not allowed'],
    [{ labels: { team: 'a\nb' } }, 'labels.team: newline not allowed'],
    [{ health: { cmd: 'curl\n-f' } }, 'health.cmd: newline not allowed'],
  ])('rejects %j naming the field', (patch, message) => {
    expect(problems({ ...base, ...patch })).toContain(message);
  });

  it('takes a tab in an env value, a label value and a command argument, as Podman does', () => {
    const spec = ServiceSpec.parse({
      ...base,
      env: { TSV: 'a\tb', TRAILING: 'x\t' },
      labels: { note: '\t' },
      command: ['/bin/echo', 'a\tb'],
    });
    expect(spec.env).toEqual({ TSV: 'a\tb', TRAILING: 'x\t' });
    expect(spec.labels).toEqual({ note: '\t' });
    expect(spec.command).toEqual(['/bin/echo', 'a\tb']);
  });

  it.each([
    [{ name: 'Web' }, 'name: must match'],
    [{ name: 'web.service' }, 'name: must match'],
    [{ name: 'a'.repeat(64) }, 'name: must match'],
    [{ image: 'Registry.example/UPPER:1' }, 'image: not an image reference'],
    [{ image: 'web:1 2' }, 'image: not an image reference'],
    [{ env: { '1BAD': 'x' } }, 'env.1BAD: variable name must match'],
    [{ ports: ['80'] }, 'ports[0]: expected [ip:]host:container[/proto]'],
    [{ ports: ['80:99999'] }, 'ports[0]: not a port: 99999'],
    [{ ports: ['8080:80/icmp'] }, 'ports[0]: protocol must be tcp, udp or sctp'],
    [{ ports: ['300.1.1.1:80:80'] }, 'ports[0]: not an IP address: 300.1.1.1'],
    [{ volumes: ['/a'] }, 'volumes[0]: expected source:destination[:options]'],
    [{ volumes: ['/a:rel'] }, 'volumes[0]: destination must be an absolute path'],
    [{ volumes: ['/a:/b:bogus'] }, 'volumes[0]: unknown volume option: bogus'],
    [{ volumes: ['/srv/my dir:/b'] }, 'volumes[0]: paths must not contain blanks'],
    [{ init: true, systemd: 'always' }, 'init: not with systemd: always (systemd is the init)'],
    [{ restart: 'sometimes' }, 'restart: must be no, on-failure'],
    [{ notify: 'healthy' }, 'notify: healthy needs a health check'],
    [{ ready: { timeout: 'soon' } }, 'ready.timeout: not a duration: "soon"'],
    [{ socket: { listen: ['localhost:80'] } }, 'socket.listen[0]: not an IP address: localhost'],
    [{ socket: { listen: [] } }, 'socket.listen: needs at least one address'],
    [{ labels: { 'io.containers.autoupdate': 'registry' } }, 'set autoUpdate instead'],
    [{ bogus: 1 }, 'Unrecognized key: "bogus"'],
    [
      { autoUpdate: 'registry', image: 'web:1' },
      'image: autoUpdate registry needs a fully qualified image',
    ],
    [
      { autoUpdate: 'registry', image: `registry.example/web@sha256:${'0'.repeat(64)}` },
      'autoUpdate: registry follows a tag, but image is pinned by digest',
    ],
  ])('rejects %j', (patch, message) => {
    expect(problems({ ...base, ...patch }).join('\n')).toContain(message);
  });

  it('accepts the port and socket forms Podman and systemd take', () => {
    const spec = ServiceSpec.parse({
      ...base,
      ports: ['8080:80', '127.0.0.1:8080:80/udp', ':80', '[::1]:8443:443', '9000-9001:9000-9001'],
      socket: { listen: ['8080', '127.0.0.1:8080', '[::1]:8080', '/run/web.sock'] },
    });
    expect(spec.ports).toHaveLength(5);
    expect(spec.socket?.listen).toHaveLength(4);
  });
});
