import { pino, type Logger } from 'pino';
import {
  keyIdOf,
  type DeviceEvent,
  type DeviceManifest,
  type ServiceHealth,
  type ServiceSpec,
  type StateReport,
  type UnitFile,
} from '@podfleet/shared';
import type { CommandTarget } from '../commands/answer-command.js';
import { CommandInbox } from '../commands/command-inbox.js';
import { runAutoUpdate, type AutoUpdateReport } from '../autoupdate/auto-update-runner.js';
import { systemClock, type Clock, type Timer } from '../clock/clock.js';
import type { HostDriver } from '../host/host-driver.js';
import type { Outbox } from '../outbox/outbox.js';
import { rejectionEvent } from '../reconcile/accept.js';
import { eventHeader, type EventSource } from '../reconcile/events.js';
import { awaitReady } from '../reconcile/health-gate.js';
import { rollBackCrashLoop } from '../reconcile/crash-loop.js';
import { resolveInterrupted } from '../reconcile/interrupted.js';
import { sameFiles } from '../reconcile/planner.js';
import { reconcile, type ReconcileDeps } from '../reconcile/reconcile.js';
import { readHostSnapshot } from '../reconcile/snapshot.js';
import type { DeviceLink } from '../session/device-link.js';
import type { StateStore } from '../state/state-store.js';
import { takeDesired } from './desired-intake.js';
import { driftEvents, findDrift } from './drift.js';
import { SerialLane } from './serial-lane.js';
import { isCrashLoop, judgeService } from './service-health.js';
import { readStateReport } from './state-report.js';

export interface AgentIntervals {
  /** State report even when nothing changed. */
  reportMs: number;
  /** Drift check: reconcile again with the current manifest. */
  driftMs: number;
  /** Scheduled auto-update; undefined: off. */
  autoUpdateMs: number | undefined;
  /** A look at each service's unit: a crash loop is found (and rolled back) within two. */
  healthMs: number;
}

/** Who else wants to know (the simulator's progress): called after the outbox has the message. */
export interface AgentObserver {
  event?(event: DeviceEvent): void;
  state?(report: StateReport): void;
}

export interface DeviceAgentOptions {
  device: string;
  /**
   * Controller public keys (PEM) a manifest may be signed with, from enrollment; after a key
   * rotation the agent followed, the keys saved in the state store replace them.
   */
  trustedKeys: readonly string[];
  driver: HostDriver;
  store: StateStore;
  link: DeviceLink;
  outbox: Outbox;
  clock?: Clock;
  logger?: Logger;
  /** Overrides every service's ready.settle (seconds). */
  settle?: number;
  /** Where podman lives, for service-style units. */
  podman?: string;
  pollMs?: number;
  intervals?: Partial<AgentIntervals>;
  newId?: () => string;
  observer?: AgentObserver;
}

const DEFAULT_INTERVALS: AgentIntervals = {
  reportMs: 60_000,
  driftMs: 300_000,
  autoUpdateMs: 86_400_000,
  healthMs: 15_000,
};
const silent = pino({ level: 'silent' });
/** Podman's own auto-update, which Debian 12 enables at boot and daily. */
const PODMAN_AUTO_UPDATE = ['podman-auto-update.timer', 'podman-auto-update.service'];

/**
 * podfleet-agent's loop for one device. Manifests from the desired topic are checked and applied
 * one at a time (a newer one arriving meanwhile is applied next, those in between are skipped);
 * every outcome goes out as events and a state report through the outbox; a drift check, a state
 * report and the auto-update run on their own timers; commands are answered on cmd/res. All work
 * that changes the host goes through one serial lane.
 */
export class DeviceAgent {
  readonly device: string;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly intervals: AgentIntervals;
  private readonly source: EventSource;
  private readonly lane = new SerialLane();
  private appliedGeneration = 0;
  private trustedKeys: readonly string[];
  /** The manifest the host was last reconciled with (drift checks run it again). */
  private current: DeviceManifest | undefined;
  private waiting: DeviceManifest | undefined;
  private applying: DeviceManifest | undefined;
  private timers: Timer[] = [];
  private running = false;
  private reporting: Promise<void> | undefined;
  private reportAgain = false;
  private readonly commands: CommandInbox;
  /** Per service: NRestarts and health at the last look (judgeService needs the count over time). */
  private readonly looks = new Map<string, { restarts: number; health: ServiceHealth }>();

  constructor(private readonly options: DeviceAgentOptions) {
    this.device = options.device;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silent;
    this.intervals = { ...DEFAULT_INTERVALS, ...options.intervals };
    this.source = {
      device: options.device,
      clock: this.clock,
      ...(options.newId ? { newId: options.newId } : {}),
    };
    this.commands = new CommandInbox(options.link, this.commandTarget(), this.logger);
    this.trustedKeys = options.trustedKeys;
  }

  /**
   * Reads the applied generation, finishes or undoes what a crash interrupted (first in the lane:
   * manifests wait behind it), listens to the link, starts the timers, reports once.
   */
  async start(): Promise<void> {
    const { link } = this.options;
    this.appliedGeneration = (await this.options.store.loadApplied())?.generation ?? 0;
    this.trustedKeys = (await this.options.store.loadTrustedKeys()) ?? this.options.trustedKeys;
    this.running = true;
    const resolved = this.lane.run(async () => {
      const changed = await this.resolveInterrupted();
      await this.keepPodmanAutoUpdateOff();
      return changed;
    });
    link.on('desired', this.onDesired);
    link.on('command', this.commands.receive);
    link.on('up', this.onUp);
    this.every(this.intervals.reportMs, () => this.report());
    this.every(this.intervals.driftMs, () => this.checkDrift());
    this.every(this.intervals.healthMs, () => this.lookAtServices());
    const autoUpdate = this.intervals.autoUpdateMs;
    if (autoUpdate !== undefined) this.every(autoUpdate, () => this.scheduledAutoUpdate(), 0.1);
    await this.report();
    void resolved.then(async (changed) => {
      if (changed) await this.report();
    });
  }

  /** resolveInterrupted at start; true when it changed something worth a report. */
  private async resolveInterrupted(): Promise<boolean> {
    const { driver, store, pollMs, settle } = this.options;
    try {
      const { resolutions, events } = await resolveInterrupted({
        ...this.source,
        driver,
        store,
        ...(pollMs !== undefined ? { pollMs } : {}),
        ...(settle !== undefined ? { settle } : {}),
      });
      for (const { service, outcome, detail } of resolutions) {
        this.logger.warn(
          `unfinished change of ${service}: ${outcome}${detail ? ` (${detail})` : ''}`,
        );
      }
      await this.emit(events);
      return resolutions.length > 0;
    } catch (error) {
      this.logger.error(`unfinished changes: ${(error as Error).message}`);
      await this.emit([this.errorEvent(`unfinished changes: ${(error as Error).message}`)]);
      return true;
    }
  }

  /**
   * Debian 12 enables Podman's own `podman-auto-update.service` (run at every boot) and its daily
   * `podman-auto-update.timer`: `podman auto-update` then `podman image prune -f`, with no gate,
   * no memory of rejected images, and the previous good image pruned once it is untagged. The
   * agent runs auto-update itself (gated, on its own schedule), so it stops and disables both
   * whenever a service here carries the label (decision 009).
   */
  private async keepPodmanAutoUpdateOff(): Promise<void> {
    const { driver, store } = this.options;
    const record = await store.loadApplied();
    if (!record?.services.some((s) => s.spec.autoUpdate !== 'off')) return;
    for (const unit of PODMAN_AUTO_UPDATE) {
      try {
        const status = await driver.unitStatus(unit);
        const up = status.active === 'active' || status.active === 'activating';
        if (up) await driver.stop(unit);
        if (status.fileState === 'enabled') await driver.disable(unit);
        if (up || status.fileState === 'enabled') {
          this.logger.warn(`${unit} stopped and disabled: the agent runs auto-update, gated`);
        }
      } catch (error) {
        this.logger.warn(`${unit}: ${(error as Error).message}`);
      }
    }
  }

  /**
   * Looks at each service's unit: a crash loop of a version that has a good one before it rolls
   * back (in the lane, once per bad version); a change of health is reported at once.
   */
  private async lookAtServices(): Promise<void> {
    const { driver, store } = this.options;
    // An apply, an auto-update or a restart at work restarts units on purpose: look after it.
    if (this.lane.busy) return;
    const record = await store.loadApplied();
    let changed = false;
    for (const { spec, files, previous } of record?.services ?? []) {
      const service = await driver.unitStatus(`${spec.name}.service`);
      const socket = spec.socket ? await driver.unitStatus(`${spec.name}.socket`) : undefined;
      const onDisk = await Promise.all(files.map((f) => driver.readUnitFile(f.kind, f.name)));
      const lastRestarts = this.looks.get(spec.name)?.restarts;
      const verdict = judgeService({
        spec,
        service,
        ...(socket ? { socket } : {}),
        gated: onDisk.every((f, i) => f?.contents === files[i]!.contents),
        lastRestarts,
        now: this.clock.now(),
      });
      changed ||= this.looks.get(spec.name)?.health !== verdict.health;
      this.looks.set(spec.name, { restarts: service.restarts, health: verdict.health });
      if (isCrashLoop(verdict.health) && previous) {
        this.logger.warn(`${spec.name}: ${verdict.reason}; rolling back to the version before`);
        const why = verdict.reason ?? verdict.health;
        await this.rollBackCrashLoop(spec, files, lastRestarts, why);
        changed = true;
      }
    }
    if (changed) await this.report();
  }

  /**
   * In the lane, and only if the version judged is still the one recorded and still loops by
   * systemd's own counters (work queued before it may have changed either).
   */
  private rollBackCrashLoop(
    spec: ServiceSpec,
    judged: UnitFile[],
    lastRestarts: number | undefined,
    why: string,
  ): Promise<void> {
    const name = spec.name;
    return this.lane.run(async () => {
      const { driver, store, pollMs } = this.options;
      const now = (await store.loadApplied())?.services.find((s) => s.spec.name === name);
      if (!now?.previous || !sameFiles(now.files, judged) || !this.running) return;
      const again = judgeService({
        spec,
        service: await driver.unitStatus(`${name}.service`),
        gated: true,
        lastRestarts,
        now: this.clock.now(),
      });
      if (!isCrashLoop(again.health)) return;
      const event = await rollBackCrashLoop(
        { ...this.source, driver, store, ...(pollMs !== undefined ? { pollMs } : {}) },
        name,
        why,
      );
      this.looks.delete(name);
      if (event) await this.emit([event]);
    });
  }

  /**
   * Stops taking work. A job already running finishes in the background (its state is on disk at
   * every step, so a process exit in the middle is also fine).
   */
  stop(): void {
    const { link } = this.options;
    this.running = false;
    for (const timer of this.timers) timer.cancel();
    this.timers = [];
    link.off('desired', this.onDesired);
    link.off('command', this.commands.receive);
    link.off('up', this.onUp);
  }

  /** Resolves once no manifest waits, no job runs and no report is being made. */
  async idle(): Promise<void> {
    for (;;) {
      await this.lane.idle();
      await this.reporting;
      await this.commands.settled();
      if (!this.lane.busy && !this.reporting && !this.waiting && !this.commands.busy) return;
    }
  }

  /** A manifest from the desired topic. */
  private readonly onDesired = (payload: Buffer): void => {
    const newestGeneration = Math.max(
      this.appliedGeneration,
      this.applying?.generation ?? 0,
      this.waiting?.generation ?? 0,
    );
    const { device } = this.options;
    const trustedKeys = this.trustedKeys;
    const intake = takeDesired(payload, { device, trustedKeys, newestGeneration });
    if (intake.kind === 'reject') {
      this.logger.warn(`manifest rejected: ${intake.rejection.reason}`);
      void this.emit([rejectionEvent(intake.rejection, this.source)]);
      return;
    }
    if (intake.trustedKeys) this.trust(intake.trustedKeys);
    if (intake.kind === 'same') {
      // After a restart: the retained copy of what is applied. Check the host against it now
      // (what broke while the agent was down is repaired at once), and on every drift timer.
      if (!this.current && intake.manifest.generation === this.appliedGeneration) {
        this.current = intake.manifest;
        void this.checkDrift();
      }
      return;
    }
    if (this.waiting) this.logger.info(`generation ${this.waiting.generation} skipped`);
    const first = !this.waiting;
    this.waiting = intake.manifest;
    if (first) void this.lane.run(() => this.applyWaiting());
  };

  /**
   * Follows a controller key rotation: from now on only the new keys count. Saved through the
   * lane, so before the manifest that carried it is applied (unless an apply was already queued,
   * in which case right after it); a restart before the save follows the rotation again from the
   * retained manifest.
   */
  private trust(keys: readonly string[]): void {
    this.trustedKeys = keys;
    this.logger.warn(`controller key rotated: trusting ${keys.map((k) => keyIdOf(k)).join(', ')}`);
    void this.lane
      .run(() => this.options.store.saveTrustedKeys(keys))
      .catch((error: unknown) =>
        this.logger.error(`saving the trusted keys: ${(error as Error).message}`),
      );
  }

  private async applyWaiting(): Promise<void> {
    const manifest = this.waiting;
    this.waiting = undefined;
    if (!manifest || !this.running) return;
    this.applying = manifest;
    try {
      const outcome = await reconcile(this.effective(manifest), this.reconcileDeps());
      this.appliedGeneration = outcome.record.generation;
      this.logger.info(`generation ${manifest.generation}: ${outcome.result}`);
      await this.emit(outcome.events);
      await this.keepPodmanAutoUpdateOff();
    } catch (error) {
      // The host or the state directory failed mid-way; the drift check tries again.
      this.logger.error(`generation ${manifest.generation}: ${(error as Error).message}`);
      await this.emit([this.errorEvent((error as Error).message, manifest.generation)]);
    } finally {
      this.current = manifest;
      this.applying = undefined;
    }
    await this.report();
  }

  /** Reconciles again with the current manifest; what it repairs is reported as drift. */
  private checkDrift(): Promise<void> {
    return this.lane.run(async () => {
      const manifest = this.current;
      if (!manifest || this.waiting || !this.running) return;
      const { driver, store } = this.options;
      try {
        const desired = this.effective(manifest);
        const record = await store.loadApplied();
        const findings = findDrift(await readHostSnapshot(driver, desired, record), record);
        const outcome = await reconcile(desired, this.reconcileDeps());
        const drift = driftEvents(findings, outcome.services, this.source);
        for (const event of drift) this.logger.warn(`drift: ${JSON.stringify(event)}`);
        await this.emit([...drift, ...outcome.events]);
        if (outcome.events.length > 0 || drift.length > 0) await this.report();
      } catch (error) {
        this.logger.error(`drift check: ${(error as Error).message}`);
        await this.emit([this.errorEvent(`drift check: ${(error as Error).message}`)]);
      }
    });
  }

  private async scheduledAutoUpdate(): Promise<void> {
    const record = await this.options.store.loadApplied();
    // podman auto-update would still update containers that are not podfleet's: only run it
    // on schedule when a service here asked for it.
    if (!record?.services.some((s) => s.spec.autoUpdate !== 'off')) return;
    await this.autoUpdate(false);
  }

  private autoUpdate(dryRun: boolean, retry = false): Promise<AutoUpdateReport> {
    return this.lane.run(async () => {
      const { driver, store, pollMs, settle } = this.options;
      const report = await runAutoUpdate(
        {
          ...this.source,
          driver,
          store,
          ...(pollMs !== undefined ? { pollMs } : {}),
          ...(settle !== undefined ? { settle } : {}),
        },
        { dryRun, retry },
      );
      await this.emit(report.events);
      if (!dryRun) await this.report();
      return report;
    });
  }

  /** `systemctl restart` and the health gate; no rollback: the version did not change. */
  private restart(service: string): Promise<{ ready: boolean; reason?: string }> {
    return this.lane.run(async () => {
      const { driver, store, pollMs, settle } = this.options;
      const spec = (await store.loadApplied())?.services.find((s) => s.spec.name === service)?.spec;
      if (!spec) throw new Error(`service ${service}: not managed on this device`);
      const unit = `${service}.service`;
      await driver.resetFailed(unit);
      await driver.restart(unit);
      const ready = { ...spec.ready, ...(settle !== undefined ? { settle } : {}) };
      const gate = await awaitReady(
        driver,
        this.clock,
        { units: [unit], ...ready, health: spec.health !== undefined },
        pollMs,
      );
      await this.report();
      return gate.ok ? { ready: true } : { ready: false, reason: gate.reason };
    });
  }

  private commandTarget(): CommandTarget {
    return {
      driver: this.options.driver,
      store: this.options.store,
      autoUpdate: async (dryRun, retry) => {
        const { results, reason } = await this.autoUpdate(dryRun, retry);
        return {
          type: 'auto-update',
          dryRun,
          results,
          ...(reason !== undefined ? { reason } : {}),
        };
      },
      restart: (service) => this.restart(service),
    };
  }

  private readonly onUp = (): void => {
    const drops = this.options.outbox.takeDrops();
    if (drops.events + drops.states === 0) return;
    const message = `outbox full while offline: dropped ${drops.events} event(s) and ${drops.states} state report(s)`;
    void this.emit([this.errorEvent(message)]);
  };

  /** A state report now; requests while one is being made are folded into one more. */
  private report(): Promise<void> {
    if (this.reporting) {
      this.reportAgain = true;
      return this.reporting;
    }
    const made = (async () => {
      do {
        this.reportAgain = false;
        await this.publishState();
      } while (this.reportAgain && this.running);
    })().finally(() => (this.reporting = undefined));
    this.reporting = made;
    return made;
  }

  private async publishState(): Promise<void> {
    const { driver, store, outbox, observer } = this.options;
    try {
      const report = await readStateReport({
        device: this.device,
        driver,
        clock: this.clock,
        record: await store.loadApplied(),
        manifest: this.current ?? this.applying,
        lastRestarts: (service) => this.looks.get(service)?.restarts,
      });
      for (const { name, unit, health } of report.services) {
        if (health) this.looks.set(name, { restarts: unit.restarts, health });
      }
      await outbox.enqueueState(report);
      observer?.state?.(report);
    } catch (error) {
      this.logger.warn(`state report: ${(error as Error).message}`);
    }
  }

  private async emit(events: DeviceEvent[]): Promise<void> {
    for (const event of events) {
      await this.options.outbox.enqueueEvent(event);
      this.options.observer?.event?.(event);
    }
  }

  private errorEvent(message: string, generation?: number): DeviceEvent {
    return {
      ...eventHeader(this.source),
      type: 'error',
      message,
      ...(generation !== undefined ? { generation } : {}),
    };
  }

  /** The manifest as this device applies it: with the configured settle override. */
  private effective(manifest: DeviceManifest): DeviceManifest {
    const { settle } = this.options;
    if (settle === undefined) return manifest;
    return {
      ...manifest,
      services: manifest.services.map((s) => ({ ...s, ready: { ...s.ready, settle } })),
    };
  }

  private reconcileDeps(): ReconcileDeps {
    const { driver, store, pollMs, podman } = this.options;
    return {
      ...this.source,
      driver,
      store,
      ...(pollMs !== undefined ? { pollMs } : {}),
      ...(podman !== undefined ? { podman } : {}),
    };
  }

  /** Runs `job` every `ms` (± `jitter` of it), the next run timed from the end of the last. */
  private every(ms: number, job: () => Promise<void>, jitter = 0): void {
    const arm = () => {
      const delay = ms * (1 + jitter * (2 * Math.random() - 1));
      const timer = this.clock.setTimer(delay, () => {
        this.timers = this.timers.filter((t) => t !== timer);
        if (!this.running) return;
        job()
          .catch((error: Error) => this.logger.error(error.message))
          .finally(() => this.running && arm());
      });
      this.timers.push(timer);
    };
    arm();
  }
}
