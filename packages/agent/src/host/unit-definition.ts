import {
  parseDuration,
  parseUnitFile,
  splitExecLine,
  unitValues,
  type UnitFile,
  type UnitFileEntry,
} from '@podfleet/shared';

export type NotifyMode = 'conmon' | 'container' | 'healthy';

/** What systemd and Podman make of a service unit (or of the unit Quadlet generates). */
export interface ServiceDefinition {
  type: 'service';
  unit: string;
  image: string;
  containerName: string;
  notify: NotifyMode;
  /** The `io.containers.autoupdate` policy, when the container carries the label. */
  autoUpdate: string | undefined;
  health: boolean;
  restart: string;
  startLimitBurst: number;
  /** Seconds; Infinity for `infinity`. */
  timeoutStartSec: number;
  requires: string[];
  partOf: string[];
  install: boolean;
}

export interface SocketDefinition {
  type: 'socket';
  unit: string;
  /** The service a connection starts (Accept=no: the socket's own name). */
  service: string;
  listen: string[];
  partOf: string[];
  install: boolean;
}

export type UnitDefinition = ServiceDefinition | SocketDefinition;

// systemd's defaults: DefaultTimeoutStartSec=90s, StartLimitBurst=5 (systemd-system.conf(5)).
const DEFAULT_TIMEOUT_START = 90;
const DEFAULT_START_LIMIT_BURST = 5;

/** `podman run` options that take the next word as their value. */
const VALUE_OPTIONS = new Set([
  '--name', '--log-driver', '--stop-timeout', '-e', '--env', '-p', '--publish', '-v', '--volume',
  '--label', '-l', '--health-cmd', '--health-interval', '--health-retries', '--health-start-period',
  '--health-timeout', '--health-on-failure', '--network', '--net', '--cidfile', '--cgroups',
  '--sdnotify', '--systemd', '--pull', '--user', '-u', '--workdir', '-w', '--entrypoint',
  '--hostname', '-h', '--ulimit', '--mount', '--env-file', '--log-opt', '--stop-signal',
]); // prettier-ignore

/** The unit systemd loads for a file: Quadlet turns `NAME.container` into `NAME.service`. */
export function unitNameOf(file: Pick<UnitFile, 'kind' | 'name'>): string {
  return file.kind === 'quadlet' ? file.name.replace(/\.container$/, '.service') : file.name;
}

/** Who reads a unit file: Quadlet a `.container` (its own line rules), systemd the rest. */
export function readerOf(file: Pick<UnitFile, 'kind' | 'name'>): 'quadlet' | 'systemd' {
  return file.kind === 'quadlet' && file.name.endsWith('.container') ? 'quadlet' : 'systemd';
}

/** Reads a unit file the way systemd (and, for `.container`, Quadlet) would. Throws on bad syntax. */
export function defineUnit(file: UnitFile): UnitDefinition {
  const entries = parseUnitFile(file.contents, readerOf(file));
  const unit = unitNameOf(file);
  const list = (section: string, key: string) =>
    unitValues(entries, section, key).flatMap((value) => value.split(/\s+/).filter(Boolean));
  const partOf = list('Unit', 'PartOf');
  const install = entries.some((entry) => entry.section === 'Install');
  if (unit.endsWith('.socket')) {
    const listen = unitValues(entries, 'Socket', 'ListenStream');
    if (listen.length === 0) throw new Error(`${unit}: no ListenStream=`);
    return {
      type: 'socket',
      unit,
      service: unit.replace(/\.socket$/, '.service'),
      listen,
      partOf,
      install,
    };
  }
  const container = file.kind === 'quadlet' ? quadletContainer(entries) : execContainer(entries);
  const last = (section: string, key: string) => unitValues(entries, section, key).at(-1);
  const timeout = last('Service', 'TimeoutStartSec');
  const burst = last('Unit', 'StartLimitBurst') ?? last('Service', 'StartLimitBurst');
  return {
    type: 'service',
    unit,
    ...container,
    containerName: container.containerName ?? `systemd-${unit.replace(/\.service$/, '')}`,
    restart: last('Service', 'Restart') ?? 'no',
    startLimitBurst: burst ? Number(burst) : DEFAULT_START_LIMIT_BURST,
    timeoutStartSec:
      timeout === 'infinity' ? Infinity : (parseDuration(timeout ?? '') ?? DEFAULT_TIMEOUT_START),
    requires: list('Unit', 'Requires'),
    partOf,
    install,
  };
}

/** The image a service or container unit file runs; undefined for a socket or unreadable file. */
export function imageOfUnitFile(file: UnitFile): string | undefined {
  try {
    const definition = defineUnit(file);
    return definition.type === 'service' ? definition.image : undefined;
  } catch {
    return undefined;
  }
}

interface ContainerDefinition {
  image: string;
  containerName: string | undefined;
  notify: NotifyMode;
  autoUpdate: string | undefined;
  health: boolean;
}

/** From ExecStart=podman run …, as `podman generate systemd --new` writes it. */
function execContainer(entries: UnitFileEntry[]): ContainerDefinition {
  const exec = unitValues(entries, 'Service', 'ExecStart').at(-1);
  if (!exec) throw new Error('no ExecStart=');
  const words = splitExecLine(exec);
  const run = words.indexOf('run');
  if (run < 0) throw new Error(`ExecStart= is not podman run: ${exec}`);
  const options = new Map<string, string[]>();
  const add = (key: string, value: string) =>
    options.set(key, [...(options.get(key) ?? []), value]);
  let image: string | undefined;
  for (let i = run + 1; i < words.length && image === undefined; i++) {
    const word = words[i]!;
    const eq = word.indexOf('=');
    if (word.startsWith('--') && eq > 0) add(word.slice(0, eq), word.slice(eq + 1));
    else if (VALUE_OPTIONS.has(word)) add(word, words[++i] ?? '');
    else if (word.startsWith('-')) add(word, '');
    else image = word;
  }
  if (!image) throw new Error(`ExecStart= names no image: ${exec}`);
  const labels = [...(options.get('--label') ?? []), ...(options.get('-l') ?? [])];
  return {
    image,
    containerName: options.get('--name')?.at(-1),
    // Podman's own default for --sdnotify is `container`.
    notify: notifyMode(options.get('--sdnotify')?.at(-1) ?? 'container'),
    autoUpdate: autoUpdatePolicy(labels),
    health: options.has('--health-cmd'),
  };
}

/** From a Quadlet `.container` file's [Container] section. */
function quadletContainer(entries: UnitFileEntry[]): ContainerDefinition {
  const last = (key: string) => unitValues(entries, 'Container', key).at(-1);
  const image = last('Image');
  if (!image) throw new Error('no Image= in [Container]');
  const podmanArgs = unitValues(entries, 'Container', 'PodmanArgs').flatMap(splitExecLine);
  const notify = last('Notify');
  return {
    image,
    containerName: last('ContainerName'),
    // Quadlet: Notify=true → --sdnotify=container, healthy → healthy, otherwise conmon.
    notify: notify === 'true' ? 'container' : notify === 'healthy' ? 'healthy' : 'conmon',
    autoUpdate: last('AutoUpdate') ?? autoUpdatePolicy(unitValues(entries, 'Container', 'Label')),
    health: last('HealthCmd') !== undefined || podmanArgs.includes('--health-cmd'),
  };
}

function notifyMode(value: string): NotifyMode {
  return value === 'conmon' || value === 'healthy' ? value : 'container';
}

function autoUpdatePolicy(labels: string[]): string | undefined {
  const prefix = 'io.containers.autoupdate=';
  return labels.find((label) => label.startsWith(prefix))?.slice(prefix.length);
}
