import { spawn } from 'node:child_process';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ActiveState as ActiveStates,
  AutoUpdateResult,
  unitDirectory,
  type UnitFile,
  type UnitScope,
} from '@podfleet/shared';
import { removeFileDurably, writeFileDurably } from '../durable/durable-file.js';
import type {
  AutoUpdateOptions,
  AutoUpdateRow,
  ContainerStatus,
  HostDriver,
  UnitFileState,
  UnitStatus,
} from './host-driver.js';
import { defineUnit, unitNameOf } from './unit-definition.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs argv[0] with the rest as its arguments, no shell in between. Resolves with the exit code
 * (non-zero included); rejects only when the program cannot run or outlives `timeoutMs`.
 */
export type CommandRunner = (
  argv: readonly string[],
  options: { timeoutMs: number },
) => Promise<CommandResult>;

export interface CommandTimeouts {
  /** systemctl show/enable/daemon-reload, podman inspect/tag, versions. */
  quick: number;
  /** systemctl stop, and a restart's stop phase: up to TimeoutStopSec= (stopTimeout + 60 s). */
  stop: number;
  /** podman pull. */
  pull: number;
  /** podman auto-update: pulls, then restarts each unit and waits for its start job. */
  autoUpdate: number;
}

export interface SystemdPodmanHostOptions {
  scope?: UnitScope;
  /** How commands run; on a device directly, in tests through nsenter into the device. */
  run?: CommandRunner;
  /** Where the device's filesystem is seen from here: `/` on the device, `/proc/PID/root` in tests. */
  root?: string;
  /** $HOME on the device, for user-scope unit directories. */
  home?: string;
  /** systemd's %t on the device: /run (system), $XDG_RUNTIME_DIR (user). */
  runtimeDir?: string;
  timeouts?: Partial<CommandTimeouts>;
}

const DEFAULT_TIMEOUTS: CommandTimeouts = {
  quick: 30_000,
  stop: 300_000,
  pull: 600_000,
  autoUpdate: 1_800_000,
};

// `systemctl show` properties unitStatus reads (systemd.unit(5), org.freedesktop.systemd1(5)).
const SHOW = [
  'LoadState', 'ActiveState', 'SubState', 'Result', 'NRestarts', 'MainPID', 'UnitFileState',
  'NeedDaemonReload', 'ActiveEnterTimestamp', 'Job',
]; // prettier-ignore
// Timestamps in UTC with microseconds, whatever the device's time zone (systemctl(1) --timestamp=).
const TIMESTAMP_STYLE = '--timestamp=us+utc';
// How systemctl prints a timestamp in the utc and us+utc styles, and in the unix one.
const UTC_TIMESTAMP = /^[A-Z][a-z]{2} (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d{1,6})? UTC$/;
const UNIX_TIMESTAMP = /^@(\d+)$/;
const UNIT_FILE_NAME = /^[A-Za-z0-9:_.@-]+\.(service|socket|container)$/;
const UNIT_NAME = /^[A-Za-z0-9:_.@][A-Za-z0-9:_.@-]*\.[a-z]+$/;
const IMAGE_REFERENCE = /^[A-Za-z0-9][^\s]*$/;
const RUNNING_STATES = new Set(['active', 'activating', 'deactivating', 'reloading', 'refreshing']);
const NO_SUCH_IMAGE = /image not known|no such image|failed to find image/i;
const NO_SUCH_CONTAINER = /no such container|no such object/i;
const JOB_POLL_MS = 50;

/**
 * The real host: unit files on disk, systemd through systemctl, Podman through its CLI. The same
 * class runs on a device (commands run directly, files under /) and in the device-lab tests
 * (commands through nsenter, files under /proc/LEADER/root).
 */
export class SystemdPodmanHost implements HostDriver {
  readonly scope: UnitScope;
  private readonly runner: CommandRunner;
  private readonly root: string;
  private readonly home: string;
  private readonly runtimeDir: string;
  private readonly timeouts: CommandTimeouts;

  constructor(options: SystemdPodmanHostOptions = {}) {
    this.scope = options.scope ?? 'system';
    this.runner = options.run ?? runCommand;
    this.root = options.root ?? '/';
    this.home = options.home ?? homedir();
    this.runtimeDir =
      options.runtimeDir ??
      (this.scope === 'user'
        ? (process.env.XDG_RUNTIME_DIR ?? `/run/user/${process.getuid?.() ?? 0}`)
        : '/run');
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  }

  async listUnitFiles(): Promise<UnitFile[]> {
    const files: UnitFile[] = [];
    // Same order as the in-memory host: by kind, then by name.
    for (const kind of ['quadlet', 'systemd'] as const) {
      const names = await readdir(this.directory(kind)).catch(ignore('ENOENT', []));
      for (const name of names.sort((a, b) => a.localeCompare(b))) {
        if (!isUnitFileName(kind, name)) continue;
        const file = await this.readUnitFile(kind, name);
        if (file) files.push(file);
      }
    }
    return files;
  }

  async readUnitFile(kind: UnitFile['kind'], name: string): Promise<UnitFile | undefined> {
    if (!isUnitFileName(kind, name)) return undefined;
    const path = join(this.directory(kind), name);
    // A symlink (a mask, an alias) is not a file podfleet wrote.
    const info = await lstat(path).catch(ignore('ENOENT', undefined));
    if (!info?.isFile()) return undefined;
    const contents = await readFile(path, 'utf8').catch(ignore('ENOENT', undefined));
    return contents === undefined ? undefined : { name, kind, contents };
  }

  async writeUnitFile(file: UnitFile): Promise<void> {
    if (!isUnitFileName(file.kind, file.name)) {
      throw new Error(`not a ${file.kind} unit file name: ${file.name}`);
    }
    const path = join(this.directory(file.kind), file.name);
    const modes = { mode: 0o644, directoryMode: 0o755 };
    await writeFileDurably(path, file.contents, modes).catch((error: Error) => {
      throw new Error(`write ${path}: ${error.message}`);
    });
  }

  async removeUnitFile(kind: UnitFile['kind'], name: string): Promise<void> {
    if (!isUnitFileName(kind, name)) throw new Error(`not a ${kind} unit file name: ${name}`);
    await removeFileDurably(join(this.directory(kind), name));
  }

  async daemonReload(): Promise<void> {
    await this.systemctl(['daemon-reload']);
  }

  start(unit: string): Promise<void> {
    return this.enqueue('start', unit);
  }

  restart(unit: string): Promise<void> {
    return this.enqueue('restart', unit);
  }

  async stop(unit: string): Promise<void> {
    await this.systemctl(['stop', checkedUnit(unit)], this.timeouts.stop);
  }

  async enable(unit: string): Promise<void> {
    await this.systemctl(['enable', checkedUnit(unit)]);
  }

  async disable(unit: string): Promise<void> {
    await this.systemctl(['disable', checkedUnit(unit)]);
  }

  async resetFailed(unit: string): Promise<void> {
    const argv = this.systemctlArgv(['reset-failed', checkedUnit(unit)]);
    const result = await this.exec(argv, this.timeouts.quick);
    // A unit systemd no longer holds has nothing to reset (the in-memory host agrees).
    if (result.code !== 0 && !/not loaded/.test(result.stderr)) throw commandError(argv, result);
  }

  async unitStatus(unit: string): Promise<UnitStatus> {
    const properties = await this.show(checkedUnit(unit), SHOW, [TIMESTAMP_STYLE]);
    const status = unitStatusFrom(unit, properties);
    if (!unit.endsWith('.service') || !RUNNING_STATES.has(status.active)) return status;
    const container = await this.container(unit);
    return container ? { ...status, container } : status;
  }

  async pullImage(reference: string): Promise<string> {
    const out = await this.podman(['pull', '-q', checkedImage(reference)], this.timeouts.pull);
    const id = out.trim().split('\n').at(-1)?.trim();
    if (!id || !/^[0-9a-f]{64}$/.test(id)) throw new Error(`podman pull ${reference}: no image id`);
    return id;
  }

  imageId(reference: string): Promise<string | undefined> {
    return this.inspectImage(reference, '{{.Id}}');
  }

  imageDigest(image: string): Promise<string | undefined> {
    return this.inspectImage(image, '{{.Digest}}');
  }

  private async inspectImage(reference: string, format: string): Promise<string | undefined> {
    const argv = ['podman', 'image', 'inspect', '--format', format, checkedImage(reference)];
    const result = await this.exec(argv, this.timeouts.quick);
    if (result.code !== 0) {
      if (NO_SUCH_IMAGE.test(result.stderr)) return undefined;
      throw commandError(argv, result);
    }
    return result.stdout.trim() || undefined;
  }

  async tagImage(imageId: string, reference: string): Promise<void> {
    await this.podman(['tag', checkedImage(imageId), checkedImage(reference)]);
  }

  async podmanVersion(): Promise<string> {
    return parseVersion('podman --version', await this.podman(['--version']), /version (\S+)/);
  }

  async systemdVersion(): Promise<string> {
    const out = await this.ok(['systemctl', '--version'], this.timeouts.quick);
    return parseVersion('systemctl --version', out, /^systemd (\S+)/);
  }

  async autoUpdate(options: AutoUpdateOptions): Promise<AutoUpdateRow[]> {
    const argv = ['podman', 'auto-update', '--format', '{{json .}}'];
    if (options.dryRun) argv.push('--dry-run');
    argv.push(`--rollback=${String(options.rollback ?? true)}`);
    const result = await this.exec(argv, this.timeouts.autoUpdate);
    const rows = parseAutoUpdateRows(result.stdout);
    // Podman prints every row, then exits 125 if any update failed: the rows say which.
    if (result.code !== 0 && rows.length === 0) throw commandError(argv, result);
    return rows;
  }

  async journal(unit: string, lines: number): Promise<string[]> {
    if (lines <= 0) return [];
    const user = this.scope === 'user' ? ['--user'] : [];
    const argv = ['journalctl', ...user, '-u', checkedUnit(unit), '-n', String(Math.floor(lines))];
    const out = await this.ok([...argv, '-o', 'cat', '--no-pager'], this.timeouts.quick);
    if (out === '') return [];
    // journalctl says `-- No entries --` on stdout when the unit has logged nothing.
    return out
      .replace(/\n$/, '')
      .split('\n')
      .filter((line) => line !== '-- No entries --');
  }

  /**
   * `systemctl start|restart --no-block`, then waits until systemd has taken the job: a new run
   * has begun (InvocationID changed) or the job is gone (a start of a running unit, or a start
   * that failed before it ran). A restart's old run is gone by then, so the health gate never
   * mistakes it for the new one; readiness is the gate's business.
   */
  private async enqueue(verb: 'start' | 'restart', unit: string): Promise<void> {
    const before = await this.show(checkedUnit(unit), ['InvocationID']);
    await this.systemctl([verb, '--no-block', unit]);
    const deadline = Date.now() + this.timeouts.stop;
    for (;;) {
      const now = await this.show(unit, ['InvocationID', 'Job']);
      if (now.get('InvocationID') !== before.get('InvocationID') || !now.get('Job')) return;
      if (Date.now() > deadline) {
        throw new Error(`systemctl ${verb} ${unit}: job ${now.get('Job')} not started in time`);
      }
      await sleep(JOB_POLL_MS);
    }
  }

  private async show(
    unit: string,
    properties: string[],
    options: string[] = [],
  ): Promise<Map<string, string>> {
    const out = await this.systemctl(['show', ...options, '-p', properties.join(','), unit]);
    return parseShowProperties(out);
  }

  /** The container a service unit runs, found as Podman's units record it. */
  private async container(unit: string): Promise<ContainerStatus | undefined> {
    const reference = await this.containerReference(unit);
    if (!reference) return undefined;
    const argv = ['podman', 'container', 'inspect', reference];
    const result = await this.exec(argv, this.timeouts.quick);
    if (result.code !== 0) {
      if (NO_SUCH_CONTAINER.test(result.stderr)) return undefined;
      throw commandError(argv, result);
    }
    return parseContainerInspect(result.stdout);
  }

  private async containerReference(unit: string): Promise<string | undefined> {
    const base = unit.slice(0, -'.service'.length);
    // generate systemd --new: --cidfile=%t/%n.ctr-id; Quadlet: --cidfile=%t/%N.cid.
    for (const cidFile of [`${unit}.ctr-id`, `${base}.cid`]) {
      const path = join(this.root, this.runtimeDir, cidFile);
      const id = (await readFile(path, 'utf8').catch(ignore('ENOENT', undefined)))?.trim();
      if (id && /^[0-9a-f]{12,64}$/.test(id)) return id;
    }
    // No cidfile (yet): the container name the unit file gives.
    for (const file of [
      await this.readUnitFile('systemd', unit),
      await this.readUnitFile('quadlet', `${base}.container`),
    ]) {
      if (!file || unitNameOf(file) !== unit) continue;
      try {
        const definition = defineUnit(file);
        if (definition.type === 'service') return definition.containerName;
      } catch {
        // Not a Podman unit podfleet can read: no container to report.
      }
    }
    return undefined;
  }

  private directory(kind: UnitFile['kind']): string {
    const relative = unitDirectory(kind, this.scope);
    return this.scope === 'user' ? join(this.root, this.home, relative) : join(this.root, relative);
  }

  private systemctlArgv(args: string[]): string[] {
    return ['systemctl', ...(this.scope === 'user' ? ['--user'] : []), ...args];
  }

  private systemctl(args: string[], timeoutMs = this.timeouts.quick): Promise<string> {
    return this.ok(this.systemctlArgv(args), timeoutMs);
  }

  private podman(args: string[], timeoutMs = this.timeouts.quick): Promise<string> {
    return this.ok(['podman', ...args], timeoutMs);
  }

  private async ok(argv: string[], timeoutMs: number): Promise<string> {
    const result = await this.exec(argv, timeoutMs);
    if (result.code !== 0) throw commandError(argv, result);
    return result.stdout;
  }

  private async exec(argv: string[], timeoutMs: number): Promise<CommandResult> {
    try {
      return await this.runner(argv, { timeoutMs });
    } catch (error) {
      throw new Error(`${describeCommand(argv)}: ${oneLine((error as Error).message)}`);
    }
  }
}

/** `Key=Value` lines of `systemctl show`; an absent property reads as an empty value. */
export function parseShowProperties(text: string): Map<string, string> {
  const properties = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) properties.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return properties;
}

/** A unit's status from `systemctl show -p LoadState,ActiveState,…` (no container part). */
export function unitStatusFrom(unit: string, properties: Map<string, string>): UnitStatus {
  const active = ActiveStates.safeParse(properties.get('ActiveState'));
  if (!active.success) {
    throw new Error(`systemctl show ${unit}: ActiveState=${properties.get('ActiveState') ?? ''}`);
  }
  const load = properties.get('LoadState');
  const number = (key: string) => Number(properties.get(key) || 0) || 0;
  const activeSince = systemdTimestamp(properties.get('ActiveEnterTimestamp') ?? '');
  return {
    unit,
    // masked, error, bad-setting: systemd refuses to start it either way.
    load: load === 'loaded' || load === 'not-found' ? load : 'bad-setting',
    active: active.data,
    sub: properties.get('SubState') || 'dead',
    result: properties.get('Result') || 'success',
    restarts: number('NRestarts'),
    ...(activeSince ? { activeSince } : {}),
    mainPid: number('MainPID'),
    fileState: unitFileState(properties.get('UnitFileState') ?? ''),
    needsReload: properties.get('NeedDaemonReload') === 'yes',
    ...(properties.get('Job') ? { jobQueued: true } : {}),
  };
}

/**
 * A `systemctl show` timestamp (`Sun 2026-11-29 08:00:05.123456 UTC`, `@1795939205`) as an ISO
 * time; undefined when empty (never happened) or in a local time zone it cannot place.
 */
export function systemdTimestamp(value: string): string | undefined {
  const unix = UNIX_TIMESTAMP.exec(value);
  if (unix) return new Date(Number(unix[1]) * 1000).toISOString();
  const utc = UTC_TIMESTAMP.exec(value);
  if (!utc) return undefined;
  const at = new Date(`${utc[1]}T${utc[2]}${(utc[3] ?? '').slice(0, 4)}Z`);
  return Number.isNaN(at.getTime()) ? undefined : at.toISOString();
}

/** systemctl's UnitFileState narrowed to what podfleet acts on (systemctl(1), is-enabled). */
export function unitFileState(value: string): UnitFileState {
  switch (value) {
    case 'enabled':
    case 'enabled-runtime':
    case 'linked':
    case 'linked-runtime':
    case 'alias':
      return 'enabled';
    case 'disabled':
    case 'indirect':
      return 'disabled';
    case 'static':
      return 'static';
    case 'generated':
    case 'transient':
      return 'generated';
    case 'masked':
    case 'masked-runtime':
      return 'masked';
    default:
      return 'not-found';
  }
}

/** `podman container inspect` JSON: the running container's id, image id and health. */
export function parseContainerInspect(json: string): ContainerStatus | undefined {
  const parsed: unknown = JSON.parse(json);
  const first: unknown = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!isRecord(first) || typeof first.Id !== 'string' || typeof first.Image !== 'string') {
    throw new Error('podman container inspect: no Id or Image');
  }
  const state = isRecord(first.State) ? first.State : {};
  // Like systemd's view of it, the container counts while its process runs.
  if (state.Running === false || (state.Status !== undefined && state.Status !== 'running')) {
    return undefined;
  }
  // Podman 5 reports State.Health; Podman 4 State.Healthcheck.
  const check = isRecord(state.Health) ? state.Health : state.Healthcheck;
  const health = isRecord(check) ? check.Status : undefined;
  return {
    id: first.Id,
    imageId: first.Image,
    health:
      health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : 'none',
  };
}

/** `podman auto-update --format '{{json .}}'`: one JSON object per line (or a JSON array). */
export function parseAutoUpdateRows(text: string): AutoUpdateRow[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const items: unknown[] = trimmed.startsWith('[')
    ? (JSON.parse(trimmed) as unknown[])
    : trimmed.split('\n').flatMap((line) => (line.trim() ? [JSON.parse(line) as unknown] : []));
  return items.map((item) => {
    const row = isRecord(item) ? item : {};
    const parsed = AutoUpdateResult.safeParse({
      unit: row.Unit,
      container: row.Container,
      image: row.Image,
      policy: row.Policy,
      updated: row.Updated,
    });
    if (!parsed.success) {
      throw new Error(`podman auto-update: unexpected row ${oneLine(JSON.stringify(item))}`);
    }
    return parsed.data;
  });
}

/**
 * One line naming the command and the last lines it printed to stderr (or stdout): where Podman,
 * systemctl and debootstrap say why, after any warnings.
 */
export function commandError(argv: readonly string[], result: CommandResult): Error {
  const last = (text: string) => oneLine(text.trim().split('\n').slice(-3).join('\n'));
  const said = last(result.stderr) || last(result.stdout);
  return new Error(`${describeCommand(argv)}: ${said || `exit ${result.code}`}`);
}

/** The default runner: spawn without a shell, collect output, kill the child on timeout. */
export const runCommand: CommandRunner = (argv, { timeoutMs }) =>
  new Promise((resolve, reject) => {
    const [program, ...args] = argv;
    if (!program) return reject(new Error('empty command'));
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return reject(new Error(`timed out after ${timeoutMs / 1000}s`));
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
  });

function parseVersion(command: string, out: string, pattern: RegExp): string {
  const version = pattern.exec(out.trim().split('\n')[0] ?? '')?.[1];
  if (!version) throw new Error(`${command}: no version in ${oneLine(out)}`);
  return version;
}

function isUnitFileName(kind: UnitFile['kind'], name: string): boolean {
  return UNIT_FILE_NAME.test(name) && name.endsWith('.container') === (kind === 'quadlet');
}

/** Refuses what systemctl could read as an option or that is no unit name at all. */
function checkedUnit(unit: string): string {
  if (!UNIT_NAME.test(unit)) throw new Error(`not a unit name: ${unit}`);
  return unit;
}

function checkedImage(reference: string): string {
  if (!IMAGE_REFERENCE.test(reference)) throw new Error(`not an image reference: ${reference}`);
  return reference;
}

function describeCommand(argv: readonly string[]): string {
  const shown = argv.join(' ');
  return shown.length > 160 ? `${shown.slice(0, 157)}...` : shown;
}

/** Multi-line tool output as one line, at most 400 characters. */
function oneLine(text: string): string {
  const line = text
    .split('\n')
    .map((part) => part.trim())
    .filter(Boolean)
    .join('; ');
  return line.length > 400 ? `${line.slice(0, 397)}...` : line;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A catch handler that turns one errno into a value and rethrows everything else. */
function ignore<T>(code: string, value: T): (error: unknown) => T {
  return (error) => {
    if ((error as NodeJS.ErrnoException).code === code) return value;
    throw error;
  };
}
