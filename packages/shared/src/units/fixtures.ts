import type { ServiceSpecInput } from '../spec/service-spec.js';

/**
 * Service specs that together use every field and the combinations that change a unit: the golden
 * tests render them, and the integration tests check each rendering against Podman's own tools.
 * `podman43: false` marks a spec that Podman 4.3 cannot create (a flag it does not have).
 */
export interface SpecFixture {
  title: string;
  spec: ServiceSpecInput;
  podman43?: boolean;
}

export const specFixtures: SpecFixture[] = [
  { title: 'minimal', spec: { name: 'web', image: 'registry.example/acme/web:1.4' } },
  {
    title: 'every field (container notify, systemd always)',
    spec: {
      name: 'web',
      image: 'registry.example/acme/web:1.4',
      command: ['/bin/sh', '-c', 'echo "hi there"; exec httpd -f'],
      env: {
        GREETING: 'hello world',
        PERCENT: '50%',
        DOLLAR: '$HOME and ${PATH}',
        BACKSLASH: 'a\\b',
      },
      ports: ['8080:8080', '127.0.0.1:9090:90/udp'],
      volumes: ['/srv/html:/var/www/html:Z', 'webdata:/data'],
      labels: { team: 'edge', 'com.example/owner': 'ops team' },
      restart: 'on-failure:3',
      stopTimeout: 15,
      notify: 'container',
      health: {
        cmd: 'wget -q -O- localhost:8080/',
        interval: '10s',
        startPeriod: '5s',
        retries: 3,
        timeout: '2s',
      },
      ready: { timeout: '90s', settle: '15s' },
      autoUpdate: 'registry',
      systemd: 'always',
      logDriver: 'journald',
      scope: 'system',
    },
  },
  {
    title: 'healthy notify (Podman >= 4.6)',
    podman43: false,
    spec: {
      name: 'api',
      image: 'registry.example/acme/api:2',
      notify: 'healthy',
      health: { cmd: 'curl -fsS localhost:8080/healthz', interval: '5s', retries: 2 },
      autoUpdate: 'registry',
    },
  },
  {
    title: 'socket activated, local auto-update',
    spec: {
      name: 'echo',
      image: 'localhost/pf/echo:1',
      socket: { listen: ['127.0.0.1:18090', '/run/echo.sock'] },
      autoUpdate: 'local',
      restart: 'no',
    },
  },
  {
    title: 'user scope, pinned by digest, always restart, init',
    spec: {
      name: 'metrics',
      image: `registry.example/acme/metrics@sha256:${'ab'.repeat(32)}`,
      scope: 'user',
      restart: 'always',
      systemd: false,
      init: true,
      logDriver: 'k8s-file',
      stopTimeout: 0,
    },
  },
  {
    title: 'unless-stopped, systemd true, no logs, awkward arguments',
    spec: {
      name: 'odd',
      image: 'docker.io/library/busybox:1.36',
      command: [
        '/bin/echo',
        "it's",
        '',
        ';',
        'tab-free \\ backslash',
        '"quoted"',
        '%n is not a specifier',
      ],
      env: { EMPTY: '', QUOTE: 'it\'s "here"', UNICODE: 'grüße ✓' },
      restart: 'unless-stopped',
      systemd: true,
      logDriver: 'none',
    },
  },
  {
    // Each value ends where systemd or Quadlet could misread the end of a line: a trailing
    // backslash (a continuation) or a Unicode blank (Quadlet trims Go's blanks from every line).
    title: 'values ending in a backslash or a Unicode blank',
    spec: {
      name: 'edge',
      image: 'docker.io/library/busybox:1.36',
      command: ['/bin/echo', 'bare\\', 'ends in a backslash\\', 'nbsp\u00a0', 'nel\u0085'],
      env: { WINDOWS_DIR: 'C:\\', IDEOGRAPHIC: 'x\u3000' },
      volumes: ['/srv/edge:/data\\'],
      labels: { nbsp: 'y\u00a0' },
      health: { cmd: ' true \\' },
      socket: { listen: ['/run/edge\\'] },
    },
  },
  {
    // Blanks where a value becomes one word of a command line. Podman's generator quotes a word
    // with a space or a tab and writes it as Go's strconv.Quote does (a tab as \t, a Unicode blank
    // as \u00a0); a word without one is written raw. systemd reads each back as the character.
    title: 'tabs and Unicode blanks in env values, labels and arguments',
    spec: {
      name: 'tabs',
      image: 'docker.io/library/busybox:1.36',
      command: ['/bin/echo', 'a\tb', '\t', 'nbsp\u00a0 and space'],
      env: {
        TAB: 'a\tb',
        TAB_SPACE: 'a\t b',
        TRAILING_TAB: 'ends in a tab\t',
        QUOTED_BLANKS: 'nbsp\u00a0 ideographic\u3000 nel\u0085 bom\ufeff',
        LINE_SEPARATOR: 'a\u2028b\u2029c',
      },
      labels: { tsv: 'x\ty' },
    },
  },
];
