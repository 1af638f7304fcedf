import type {
  DeviceEvent,
  DeviceFailure,
  DeviceManifest,
  ServiceSpec,
  UnitStyle,
} from '@podfleet/shared';
import type { HostDriver } from '../host/host-driver.js';
import { imageOfUnitFile } from '../host/unit-definition.js';
import type { AppliedRecord, ServiceBackup } from '../state/applied-record.js';
import { recordGood } from '../state/service-record.js';
import type { StateStore } from '../state/state-store.js';
import { eventHeader, type EventSource } from './events.js';
import { failureWithJournal, failureWithoutJournal, type FailureCause } from './failure.js';
import { awaitReady } from './health-gate.js';
import { isRunning } from './planner.js';
import { restoreService } from './rollback.js';
import { serviceFileNames } from './snapshot.js';
import { describeStep, type ServiceStep, type Step, type UnitCommand } from './steps.js';

export interface ExecutorDeps extends EventSource {
  driver: HostDriver;
  store: StateStore;
  /** How often the health gate reads unit status. */
  pollMs?: number;
}

export interface ApplyPlan {
  steps: Step[];
  desired: DeviceManifest;
  applied: AppliedRecord | undefined;
  style: UnitStyle;
}

/** What happened to one service: the image it now runs and what was done. */
export interface ServiceOutcome {
  name: string;
  image: string;
  action: 'installed' | 'updated' | 'repaired' | 'removed' | 'rolled back' | 'kept' | 'failed';
}

export interface ApplyOutcome {
  result: 'applied' | 'failed';
  /** The applied record as saved to the store. */
  record: AppliedRecord;
  services: ServiceOutcome[];
  /** Rollback events as they happened, then one apply event (none for a no-op re-run). */
  events: DeviceEvent[];
}

type AwaitReadyStep = Extract<Step, { kind: 'await-ready' }>;

const COMMANDS: Record<UnitCommand, (driver: HostDriver, unit: string) => Promise<void>> = {
  enable: (driver, unit) => driver.enable(unit),
  disable: (driver, unit) => driver.disable(unit),
  start: (driver, unit) => driver.start(unit),
  restart: (driver, unit) => driver.restart(unit),
  stop: (driver, unit) => driver.stop(unit),
  'reset-failed': (driver, unit) => driver.resetFailed(unit),
};

const PAST: Record<AwaitReadyStep['action'], ServiceOutcome['action']> = {
  install: 'installed',
  update: 'updated',
  repair: 'repaired',
};

/**
 * Runs a plan on the host, the only code that does. A service whose step fails is left alone for
 * the rest of the plan: untouched if its image could not be pulled, otherwise rolled back to the
 * backup saved before its first change. Other services go on.
 */
export function executePlan(plan: ApplyPlan, deps: ExecutorDeps): Promise<ApplyOutcome> {
  return new PlanRun(plan, deps).run();
}

class PlanRun {
  private readonly record: AppliedRecord;
  private readonly wanted: Map<string, ServiceSpec>;
  private readonly abandoned = new Set<string>();
  private readonly backedUp = new Set<string>();
  private readonly outcomes = new Map<string, ServiceOutcome>();
  private readonly events: DeviceEvent[] = [];
  private readonly failures: string[] = [];
  /** The first service's failure: what the apply event tells the rollout policy. */
  private firstFailure: DeviceFailure | undefined;

  constructor(
    private readonly plan: ApplyPlan,
    private readonly deps: ExecutorDeps,
  ) {
    this.record = plan.applied
      ? structuredClone(plan.applied)
      : { generation: 0, style: plan.style, services: [], failed: [] };
    this.wanted = new Map(plan.desired.services.map((spec) => [spec.name, spec]));
  }

  async run(): Promise<ApplyOutcome> {
    const { desired, steps, applied } = this.plan;
    for (const [index, step] of steps.entries()) {
      if ('service' in step && this.abandoned.has(step.service)) continue;
      try {
        await this.perform(step);
      } catch (error) {
        await this.stepFailed(step, index, `${describeStep(step)}: ${(error as Error).message}`);
      }
    }
    await this.forgetRemoved();
    this.record.generation = desired.generation;
    this.record.style = this.plan.style;
    // A rolled-back change is retried when a newer generation asks for it again.
    this.record.failed = this.record.failed.filter((f) => f.generation === desired.generation);
    await this.deps.store.saveApplied(this.record);
    if (applied?.generation !== desired.generation) this.failEarlier();
    const result = this.failures.length > 0 ? 'failed' : 'applied';
    const services = [...this.outcomes.values()];
    if (steps.length > 0 || applied?.generation !== desired.generation) {
      this.events.push({
        ...eventHeader(this.deps),
        type: 'apply',
        generation: desired.generation,
        result,
        services,
        ...(this.failures.length > 0 ? { reason: this.failures.join('; ') } : {}),
        ...(this.firstFailure ? { failure: this.firstFailure } : {}),
      });
    }
    return { result, record: this.record, services, events: this.events };
  }

  private async perform(step: Step): Promise<void> {
    const { driver } = this.deps;
    switch (step.kind) {
      case 'pull-image':
        await driver.pullImage(step.image);
        return;
      case 'write-unit':
      case 'write-socket':
        await this.backUp(step.service);
        return driver.writeUnitFile(step.file);
      case 'remove-unit':
        await this.backUp(step.service);
        return driver.removeUnitFile(step.file.kind, step.file.name);
      case 'daemon-reload':
        return driver.daemonReload();
      case 'await-ready':
        return this.gate(step);
      default:
        // Before a changed service's old socket or enablement goes (style or socket change).
        if (step.kind === 'disable' || step.kind === 'stop') await this.backUp(step.service);
        return COMMANDS[step.kind](driver, step.unit);
    }
  }

  private async stepFailed(step: Step, index: number, reason: string): Promise<void> {
    if (!('service' in step)) {
      // daemon-reload failed: every service still to be activated is affected.
      const pending = new Set(
        this.plan.steps
          .slice(index + 1)
          .flatMap((later) => ('service' in later ? [later.service] : [])),
      );
      const affected = [...pending].filter((s) => this.wanted.has(s) && !this.abandoned.has(s));
      for (const service of affected) {
        await this.fail(service, hostFault(service, reason), false);
      }
      if (affected.length === 0) this.report(reason);
      return;
    }
    if (!this.wanted.has(step.service)) {
      // Removing a service that left the manifest: report, and go on with the rest of it.
      this.report(reason, step.service);
      return;
    }
    // The new version refused to start: as good as a failed gate. Anything else is the host's fault.
    const refused = step.kind === 'start' || step.kind === 'restart';
    await this.fail(step.service, stepCause(step, reason), refused);
  }

  /**
   * A generation first applied now whose change of a service was already rolled back in it (at
   * start, from an interrupted change): the service keeps its last good version, so the apply
   * failed, and says so, rather than calling the generation applied.
   */
  private failEarlier(): void {
    for (const change of this.record.failed) {
      if (!this.wanted.has(change.name) || this.outcomes.has(change.name)) continue;
      this.failures.push(`${change.name}: rolled back: ${change.reason}`);
      const kept = this.record.services.find((s) => s.spec.name === change.name);
      this.outcomes.set(change.name, {
        name: change.name,
        image: kept?.spec.image ?? '',
        action: kept ? 'kept' : 'failed',
      });
      this.firstFailure ??= {
        reason: 'rolled-back',
        detail: change.reason,
        unit: `${change.name}.service`,
        journal: [],
      };
    }
  }

  private report(reason: string, service?: string): void {
    this.failures.push(service ? `${service}: ${reason}` : reason);
    this.events.push({
      ...eventHeader(this.deps),
      type: 'error',
      message: reason,
      ...(service ? { service } : {}),
      generation: this.plan.desired.generation,
    });
  }

  private async gate(step: AwaitReadyStep): Promise<void> {
    const { driver, clock, store, pollMs } = this.deps;
    const { spec } = step;
    const result = await awaitReady(
      driver,
      clock,
      { units: step.units, ...spec.ready, health: spec.health !== undefined },
      pollMs,
    );
    if (!result.ok) {
      const { reason, failure, unit } = result;
      return this.fail(step.service, { reason: failure, detail: reason, unit }, true);
    }
    const status = await driver.unitStatus(`${step.service}.service`);
    const imageId = status.container?.imageId ?? (await driver.imageId(spec.image));
    const replaced = await store.loadBackup(step.service);
    recordGood(this.record, { spec, files: step.files, imageId }, replaced);
    // Recorded before the backup goes: a power cut in between leaves a backup that the next start
    // finds finished (the record already names this version), never a change with no record.
    await store.saveApplied(this.record);
    await store.dropBackup(step.service);
    this.outcomes.set(step.service, {
      name: step.service,
      image: spec.image,
      action: PAST[step.action],
    });
  }

  /** Gives up on a service's change and puts back what ran before it, if anything was touched. */
  private async fail(service: string, cause: FailureCause, versionAtFault: boolean): Promise<void> {
    const { driver, clock, store, pollMs } = this.deps;
    const reason = cause.detail;
    this.abandoned.add(service);
    // Before the rollback restarts the previous version: the journal is the failed run's.
    const failure =
      cause.reason === 'pull-failed'
        ? failureWithoutJournal(cause)
        : await failureWithJournal(driver, cause);
    this.firstFailure ??= failure;
    const gate = this.gateStep(service);
    const attempted = gate?.spec ?? this.wanted.get(service)!;
    if (versionAtFault && gate && gate.action !== 'repair') {
      this.record.failed = [
        ...this.record.failed.filter((f) => f.name !== service),
        {
          name: service,
          generation: this.plan.desired.generation,
          image: attempted.image,
          files: gate.files,
          reason,
        },
      ];
    }
    const backup = await store.loadBackup(service);
    const recorded = this.record.services.find((s) => s.spec.name === service);
    if (!backup) {
      // Nothing was changed (the pull failed) or there is nothing older (a repair): keep what runs.
      this.failures.push(`${service}: ${reason}`);
      const action = recorded && gate?.action !== 'repair' ? 'kept' : 'failed';
      this.outcomes.set(service, { name: service, image: recorded?.spec.image ?? '', action });
      await store.saveApplied(this.record);
      return;
    }
    const restore = await restoreService(driver, clock, backup, pollMs);
    await store.dropBackup(service);
    if (backup.files.length === 0) {
      this.record.services = this.record.services.filter((s) => s.spec.name !== service);
    }
    this.failures.push(
      `${service}: ${reason}${restore.detail && !restore.restored ? `; not restored: ${restore.detail}` : ''}`,
    );
    this.events.push({
      ...eventHeader(this.deps),
      type: 'rollback',
      service,
      generation: this.plan.desired.generation,
      trigger: 'apply',
      fromImage: attempted.image,
      toImage: backup.image ?? '',
      reason,
      restored: restore.restored,
      failure,
    });
    this.outcomes.set(service, { name: service, image: backup.image ?? '', action: 'rolled back' });
    await store.saveApplied(this.record);
  }

  /**
   * Saves the service's files, image and unit states before its first change. A backup left by an
   * interrupted run is kept: it holds the last version known to work, not the half-applied one.
   */
  private async backUp(service: string): Promise<void> {
    const { driver, store } = this.deps;
    if (!this.wanted.has(service) || this.backedUp.has(service)) return;
    this.backedUp.add(service);
    if (await store.loadBackup(service)) return;
    const files = (
      await Promise.all(serviceFileNames(service).map((f) => driver.readUnitFile(f.kind, f.name)))
    ).filter((file) => file !== undefined);
    const socket = await driver.unitStatus(`${service}.socket`);
    const main = await driver.unitStatus(`${service}.service`);
    const recorded = this.plan.applied?.services.find((s) => s.spec.name === service);
    const mainFile = files.find((f) => f.name !== `${service}.socket`);
    // The image the files on disk name (they are what gets restored), and the id that really ran.
    const image = (mainFile && imageOfUnitFile(mainFile)) ?? recorded?.spec.image;
    const imageId =
      main.container?.imageId ??
      (recorded?.spec.image === image ? recorded?.imageId : undefined) ??
      (image ? await driver.imageId(image) : undefined);
    const spec = recorded?.spec ?? this.wanted.get(service)!;
    const gate = this.gateStep(service);
    const backup: ServiceBackup = {
      name: service,
      files,
      ...(image ? { image } : {}),
      ...(imageId ? { imageId } : {}),
      enabled: [socket, main].filter((s) => s.fileState === 'enabled').map((s) => s.unit),
      active: [socket, main].filter(isRunning).map((s) => s.unit),
      ready: spec.ready,
      health: spec.health !== undefined,
      ...(recorded ? { spec: recorded.spec } : {}),
      origin: 'apply',
      ...(gate
        ? {
            target: {
              generation: this.plan.desired.generation,
              spec: gate.spec,
              files: gate.files,
            },
          }
        : {}),
    };
    await store.saveBackup(backup);
  }

  private gateStep(service: string): AwaitReadyStep | undefined {
    return this.plan.steps.find(
      (s): s is AwaitReadyStep => s.kind === 'await-ready' && s.service === service,
    );
  }

  private async forgetRemoved(): Promise<void> {
    const removed = new Set(
      this.plan.steps.flatMap((step) =>
        'service' in step && !this.wanted.has(step.service) ? [step.service] : [],
      ),
    );
    for (const service of removed) {
      const recorded = this.record.services.find((s) => s.spec.name === service);
      this.record.services = this.record.services.filter((s) => s.spec.name !== service);
      this.outcomes.set(service, {
        name: service,
        image: recorded?.spec.image ?? '',
        action: 'removed',
      });
      await this.deps.store.dropBackup(service);
    }
  }
}

/** The rollout policy's reason for a failed step of a service. */
function stepCause(step: ServiceStep, detail: string): FailureCause {
  if (step.kind === 'pull-image') {
    return { reason: 'pull-failed', detail, unit: `${step.service}.service` };
  }
  // systemd refused to start the new version: it did not start.
  if (step.kind === 'start' || step.kind === 'restart') {
    return { reason: 'start-timeout', detail, unit: step.unit };
  }
  return hostFault(step.service, detail);
}

/** A step the host failed (a write, daemon-reload, enable): not the version's fault, rolled back. */
function hostFault(service: string, detail: string): FailureCause {
  return { reason: 'rolled-back', detail, unit: `${service}.service` };
}
