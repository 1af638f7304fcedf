import { createHash } from 'node:crypto';
import type { UnitFile } from '@podfleet/shared';
import type { Clock, Timer } from '../clock/clock.js';
import type { ActiveState, ContainerStatus, UnitStatus } from './host-driver.js';
import type { MemoryImageStore } from './memory-images.js';
import { countStart, shouldRestart, unitSources, type StartLimit } from './systemd-rules.js';
import {
  defineUnit,
  type ServiceDefinition,
  type SocketDefinition,
  type UnitDefinition,
} from './unit-definition.js';

/** How a start job ended, as `systemctl start` (without --no-block) reports it. */
export type JobResult = 'done' | 'failed' | 'canceled';

export interface MemorySystemdOptions {
  /** How long after `podman run` conmon sends READY=1 (device-lab: unit start 0.3–0.5 s). */
  notifyDelayMs: number;
  /** RestartSec= (systemd's default 100ms). */
  restartSecMs: number;
  /** StartLimitIntervalSec= (systemd's default 10s). */
  startLimitIntervalMs: number;
  /** Journal lines kept per unit. */
  journalLines: number;
}

export type RunStatus = Pick<
  UnitStatus,
  'load' | 'active' | 'sub' | 'result' | 'restarts' | 'activeSince' | 'mainPid' | 'container'
>;

export interface RunningContainer {
  unit: string;
  definition: ServiceDefinition;
  container: ContainerStatus & { name: string };
}

interface LoadedUnit {
  source: UnitFile;
  definition?: UnitDefinition;
}

interface Run {
  active: ActiveState;
  sub: string;
  result: string;
  restarts: number;
  /** When it last entered active (ms since the epoch, the clock's): ActiveEnterTimestamp. */
  activeSince?: number;
  /** The app exits this long after the run becomes active (ImageBehaviour.crashOnceAfterReadyMs). */
  crashAfterReadyMs?: number;
  mainPid: number;
  limit?: StartLimit;
  definition?: UnitDefinition;
  container?: ContainerStatus & { name: string };
  timers: Timer[];
  startTimeout?: Timer;
  waiters: Array<(result: JobResult) => void>;
}

function enter(run: Run, active: ActiveState, sub: string, result?: string): void {
  run.active = active;
  run.sub = sub;
  if (result !== undefined) run.result = result;
}

function clearProcess(run: Run): void {
  run.mainPid = 0;
  run.container = undefined;
}

/** systemd's unit state machine for Type=notify Podman services and their sockets. */
export class MemorySystemd {
  private loaded = new Map<string, LoadedUnit>();
  private readonly runs = new Map<string, Run>();
  private readonly logs = new Map<string, string[]>();
  private pids = 1000;
  private containers = 0;

  constructor(
    private readonly clock: Clock,
    private readonly images: MemoryImageStore,
    private readonly options: MemorySystemdOptions,
    private readonly seed: string,
  ) {}

  /** daemon-reload: loads every file; running units keep the definition they started with. */
  reload(files: UnitFile[]): void {
    const loaded = new Map<string, LoadedUnit>();
    for (const [unit, source] of unitSources(files)) {
      try {
        loaded.set(unit, { source, definition: defineUnit(source) });
      } catch (error) {
        // Quadlet skips a file it cannot read; systemd loads it as bad-setting.
        if (source.kind === 'systemd') loaded.set(unit, { source });
        this.log(unit, `${source.name}: ${(error as Error).message}`);
      }
    }
    this.loaded = loaded;
  }

  needsReload(unit: string, files: UnitFile[]): boolean {
    const onDisk = unitSources(files).get(unit);
    const loaded = this.loaded.get(unit)?.source;
    if (!onDisk || !loaded) return onDisk !== loaded;
    return onDisk.kind !== loaded.kind || onDisk.contents !== loaded.contents;
  }

  start(unit: string): void {
    const definition = this.definition(unit);
    const run = this.run(unit);
    if (run.active === 'active' || (run.active === 'activating' && run.sub !== 'auto-restart')) {
      return;
    }
    if (definition.type === 'socket') return this.listen(unit, run);
    // Requires=NAME.socket: starting the service starts its socket too.
    for (const required of definition.requires) {
      if (this.loaded.get(required)?.definition?.type === 'socket') this.start(required);
    }
    this.launch(unit, run, definition, false);
  }

  stop(unit: string): void {
    if (!this.loaded.has(unit) && !this.runs.has(unit)) throw new Error(`Unit ${unit} not loaded.`);
    for (const dependent of this.partOf(unit)) this.halt(dependent);
    this.halt(unit);
  }

  restart(unit: string): void {
    this.definition(unit);
    // PartOf=: stopping or restarting the unit does the same to the units that are part of it.
    const dependents = this.partOf(unit).filter((name) => this.isUp(name));
    for (const dependent of dependents) this.halt(dependent);
    this.halt(unit);
    for (const dependent of dependents) this.start(dependent);
    this.start(unit);
  }

  /** Power gone: every run ends where it is, with no stop and no ExecStop. */
  powerCut(): void {
    for (const run of this.runs.values()) this.cancelTimers(run);
    this.runs.clear();
    this.loaded = new Map();
  }

  resetFailed(unit: string): void {
    const run = this.runs.get(unit);
    if (!run) return;
    run.limit = undefined; // reset-failed also resets the start rate limit
    if (run.active === 'failed') enter(run, 'inactive', 'dead');
    run.result = 'success';
  }

  /** A client connects to a listening socket: systemd starts the service behind it. */
  connect(socketUnit: string): void {
    const definition = this.loaded.get(socketUnit)?.definition;
    if (definition?.type !== 'socket' || this.runs.get(socketUnit)?.active !== 'active') {
      throw new Error(`connect ${socketUnit}: connection refused`);
    }
    this.log(socketUnit, `Incoming connection, starting ${definition.service}.`);
    this.start(definition.service);
  }

  status(unit: string): RunStatus {
    const loaded = this.loaded.get(unit);
    const run = this.runs.get(unit);
    return {
      load: !loaded ? 'not-found' : loaded.definition ? 'loaded' : 'bad-setting',
      active: run?.active ?? 'inactive',
      sub: run?.sub ?? 'dead',
      result: run?.result ?? 'success',
      restarts: run?.restarts ?? 0,
      ...(run?.activeSince !== undefined
        ? { activeSince: new Date(run.activeSince).toISOString() }
        : {}),
      mainPid: run?.mainPid ?? 0,
      ...(run?.container ? { container: { ...run.container } } : {}),
    };
  }

  isGenerated(unit: string): boolean {
    return this.loaded.get(unit)?.source.kind === 'quadlet';
  }

  /** Running containers, in unit order (what `podman auto-update` walks). */
  runningContainers(): RunningContainer[] {
    const running: RunningContainer[] = [];
    for (const [unit, run] of [...this.runs].sort(([a], [b]) => a.localeCompare(b))) {
      if (run.active === 'active' && run.container && run.definition?.type === 'service') {
        running.push({ unit, definition: run.definition, container: run.container });
      }
    }
    return running;
  }

  /** Resolves when the unit's current start job ends (READY=1, failure, or stop). */
  awaitJob(unit: string): Promise<JobResult> {
    const run = this.runs.get(unit);
    if (run?.active === 'activating' && run.sub === 'start') {
      return new Promise((resolve) => run.waiters.push(resolve));
    }
    return Promise.resolve(run?.active === 'active' ? 'done' : 'failed');
  }

  journal(unit: string, lines: number): string[] {
    return (this.logs.get(unit) ?? []).slice(-Math.max(0, lines));
  }

  private definition(unit: string): UnitDefinition {
    const loaded = this.loaded.get(unit);
    if (!loaded) throw new Error(`Unit ${unit} not found.`);
    if (!loaded.definition) throw new Error(`Unit ${unit} has a bad unit file setting.`);
    return loaded.definition;
  }

  private partOf(unit: string): string[] {
    return [...this.loaded]
      .filter(([, loaded]) => loaded.definition?.partOf.includes(unit))
      .map(([name]) => name);
  }

  private isUp(unit: string): boolean {
    const active = this.runs.get(unit)?.active;
    return active === 'active' || active === 'activating';
  }

  private run(unit: string): Run {
    let run = this.runs.get(unit);
    if (!run) {
      run = {
        active: 'inactive',
        sub: 'dead',
        result: 'success',
        restarts: 0,
        mainPid: 0,
        timers: [],
        waiters: [],
      };
      this.runs.set(unit, run);
    }
    return run;
  }

  private listen(unit: string, run: Run): void {
    enter(run, 'active', 'listening', 'success');
    run.activeSince = this.clock.now();
    const definition = this.loaded.get(unit)?.definition as SocketDefinition;
    run.definition = definition;
    this.log(unit, `Listening on ${definition.listen.join(', ')}.`);
  }

  private launch(unit: string, run: Run, definition: ServiceDefinition, automatic: boolean): void {
    this.cancelTimers(run);
    const start = countStart(
      run.limit,
      this.clock.now(),
      this.options.startLimitIntervalMs,
      definition.startLimitBurst,
    );
    run.limit = start.limit;
    if (!start.allowed) {
      this.log(unit, 'Start request repeated too quickly.');
      return this.enterFailed(unit, run, 'start-limit-hit');
    }
    // systemd flushes NRestarts on any start that is not an automatic restart.
    if (!automatic) run.restarts = 0;
    enter(run, 'activating', 'start', 'success');
    run.definition = definition;
    run.mainPid = ++this.pids;
    this.log(unit, `Starting ${unit}...`);
    let imageId = this.images.localId(definition.image);
    if (!imageId) {
      try {
        imageId = this.images.pull(definition.image); // podman run pulls a missing image
      } catch (error) {
        this.log(unit, `Error: ${(error as Error).message}`);
        this.schedule(run, 50, () => this.exited(unit, run, 'exit-code', 'status=125'));
        return;
      }
    }
    this.createContainer(unit, run, definition, imageId, automatic);
  }

  private createContainer(
    unit: string,
    run: Run,
    definition: ServiceDefinition,
    imageId: string,
    automatic: boolean,
  ): void {
    const behaviour = this.images.behaviourOf(imageId);
    // Once per start: the automatic restart after that crash stays up.
    run.crashAfterReadyMs = automatic ? undefined : behaviour.crashOnceAfterReadyMs;
    const id = `${this.seed}/container/${this.containers++}`;
    const container: ContainerStatus & { name: string } = {
      id: createHash('sha256').update(id).digest('hex'),
      imageId,
      name: definition.containerName,
      health: definition.health ? 'starting' : 'none',
    };
    run.container = container;
    const notifyDelay = this.options.notifyDelayMs;
    const appReady = behaviour.readyAfterMs ?? notifyDelay;
    const appHealthy = !behaviour.neverReady && !behaviour.unhealthy;
    if (definition.health) {
      this.schedule(run, appReady, () => {
        container.health = appHealthy ? 'healthy' : 'unhealthy';
      });
    }
    // --sdnotify=conmon: conmon sends READY=1 once the container runs, whatever the app does;
    // container: the app's own READY=1; healthy: READY=1 when the healthcheck first passes.
    const readyAt =
      definition.notify === 'conmon'
        ? notifyDelay
        : definition.notify === 'container'
          ? behaviour.neverReady
            ? undefined
            : appReady
          : appHealthy && definition.health
            ? appReady
            : undefined;
    if (readyAt !== undefined) this.schedule(run, readyAt, () => this.ready(unit, run));
    if (Number.isFinite(definition.timeoutStartSec)) {
      run.startTimeout = this.schedule(run, definition.timeoutStartSec * 1000, () => {
        this.log(unit, 'start operation timed out. Terminating.');
        this.exited(unit, run, 'timeout', 'signal=TERM');
      });
    }
    if (behaviour.crashAfterMs !== undefined) {
      this.schedule(run, behaviour.crashAfterMs, () =>
        this.exited(unit, run, 'exit-code', 'status=1'),
      );
    }
  }

  private ready(unit: string, run: Run): void {
    run.startTimeout?.cancel();
    enter(run, 'active', 'running');
    run.activeSince = this.clock.now();
    this.log(unit, `Started ${unit}.`);
    this.settle(run, 'done');
    const crashAfter = run.crashAfterReadyMs;
    if (crashAfter !== undefined) {
      run.crashAfterReadyMs = undefined;
      this.schedule(run, crashAfter, () => {
        this.log(unit, `${run.container?.name ?? unit}: app crashed after it was ready`);
        this.exited(unit, run, 'exit-code', 'status=1');
      });
    }
  }

  /** The main process ended on its own: Restart= decides what comes next. */
  private exited(unit: string, run: Run, result: string, how: string): void {
    this.cancelTimers(run);
    this.log(unit, `Main process exited, ${how}`);
    clearProcess(run);
    this.settle(run, 'failed');
    const definition = run.definition as ServiceDefinition;
    if (!shouldRestart(definition.restart, result)) return this.enterFailed(unit, run, result);
    enter(run, 'activating', 'auto-restart', result);
    this.log(unit, `Failed with result '${result}'.`);
    this.schedule(run, this.options.restartSecMs, () => {
      run.restarts++;
      this.log(unit, `Scheduled restart job, restart counter is at ${run.restarts}.`);
      // An automatic restart uses whatever definition is loaded by then.
      const next = this.loaded.get(unit)?.definition;
      this.launch(unit, run, next?.type === 'service' ? next : definition, true);
    });
  }

  private enterFailed(unit: string, run: Run, result: string): void {
    this.cancelTimers(run);
    enter(run, 'failed', 'failed', result);
    clearProcess(run);
    this.log(unit, `Failed with result '${result}'.`);
    this.settle(run, 'failed');
  }

  /** systemctl stop: ExecStop, then --rm removes the container. A failed unit stays failed. */
  private halt(unit: string): void {
    const run = this.runs.get(unit);
    if (!run) return;
    this.cancelTimers(run);
    this.settle(run, 'canceled');
    if (run.active === 'failed') return;
    if (run.active !== 'inactive') this.log(unit, `Stopped ${unit}.`);
    enter(run, 'inactive', 'dead');
    clearProcess(run);
  }

  private schedule(run: Run, ms: number, fire: () => void): Timer {
    const timer = this.clock.setTimer(ms, fire);
    run.timers.push(timer);
    return timer;
  }

  private cancelTimers(run: Run): void {
    for (const timer of run.timers) timer.cancel();
    run.timers = [];
    run.startTimeout = undefined;
  }

  private settle(run: Run, result: JobResult): void {
    const waiters = run.waiters;
    run.waiters = [];
    for (const waiter of waiters) waiter(result);
  }

  private log(unit: string, message: string): void {
    const lines = this.logs.get(unit) ?? [];
    lines.push(`${new Date(this.clock.now()).toISOString()} ${unit}: ${message}`);
    if (lines.length > this.options.journalLines) lines.shift();
    this.logs.set(unit, lines);
  }
}
