import {
  renderUnits,
  type DeviceManifest,
  type ServiceSpec,
  type UnitFile,
  type UnitScope,
  type UnitStyle,
} from '@podfleet/shared';
import type { UnitStatus } from '../host/host-driver.js';
import type { AppliedRecord, AppliedService } from '../state/applied-record.js';
import { belongsTo, managedServices, type HostSnapshot } from './snapshot.js';
import type { ChangeAction, Step, UnitCommand } from './steps.js';

/** How this device installs units: chosen from its Podman version, and its scope. */
export interface PlanTarget {
  style: UnitStyle;
  /** The agent's scope; overrides each spec's (one agent manages one scope). */
  scope?: UnitScope;
  /** Where podman lives on the device, for service-style ExecStart= lines. */
  podman?: string;
}

interface ServicePlan {
  pull: Step[];
  prepare: Step[];
  reload: boolean;
  activate: Step[];
}

const NOTHING: ServicePlan = { pull: [], prepare: [], reload: false, activate: [] };

/**
 * The steps that take the host from what it is to what the manifest says, and nothing when it is
 * there already. Pure. Level-triggered: it compares files, unit states and images, never events.
 *
 * Order: pull every new image first (a pull failure then touches nothing); write and remove unit
 * files; one daemon-reload; per service enable, start or restart, then the health gate; last, stop
 * and remove the services that left the manifest. A changed service is restarted, never stopped
 * first, so it always runs in its old or its new version.
 */
export function planSteps(
  current: HostSnapshot,
  applied: AppliedRecord | undefined,
  desired: DeviceManifest,
  target: PlanTarget,
): Step[] {
  const plans = desired.services.map((spec) =>
    planService(spec, current, applied, desired.generation, target),
  );
  const wanted = new Set(desired.services.map((spec) => spec.name));
  const removals = managedServices(current.files, applied)
    .filter((name) => !wanted.has(name))
    .flatMap((name) => planRemoval(name, current));
  const steps: Step[] = [
    ...plans.flatMap((plan) => plan.pull),
    ...plans.flatMap((plan) => plan.prepare),
  ];
  if (plans.some((plan) => plan.reload)) steps.push({ kind: 'daemon-reload' });
  steps.push(...plans.flatMap((plan) => plan.activate), ...removals);
  if (removals.some((step) => step.kind === 'remove-unit')) steps.push({ kind: 'daemon-reload' });
  return steps;
}

function planService(
  spec: ServiceSpec,
  current: HostSnapshot,
  applied: AppliedRecord | undefined,
  generation: number,
  target: PlanTarget,
): ServicePlan {
  const options = {
    style: target.style,
    ...(target.scope ? { scope: target.scope } : {}),
    ...(target.podman ? { podman: target.podman } : {}),
  };
  const files = renderUnits(spec, options);
  const recorded = applied?.services.find((service) => service.spec.name === spec.name);
  const rolledBack = applied?.failed.some(
    (change) =>
      change.name === spec.name &&
      change.generation === generation &&
      sameFiles(change.files, files),
  );
  // This exact change failed its gate in this generation: keep the last good version running.
  if (rolledBack)
    return recorded ? converge(recorded.spec, recorded.files, recorded, current) : NOTHING;
  return converge(spec, files, recorded, current);
}

/** One service's view of the host against the version it should run. */
interface ServiceView {
  name: string;
  service: string;
  socket: string | undefined;
  writes: UnitFile[];
  removes: UnitFile[];
  serviceStatus: UnitStatus;
  socketStatus: UnitStatus;
  changed: boolean;
  /**
   * Only a service-style unit that no socket starts is enabled itself; Quadlet's generated units
   * cannot be (`systemctl enable` refuses them) and come up through their [Install].
   */
  enableService: boolean;
  gate(units: string[]): Step;
  command(kind: UnitCommand, unit: string): Step;
}

function converge(
  spec: ServiceSpec,
  files: UnitFile[],
  recorded: AppliedService | undefined,
  current: HostSnapshot,
): ServicePlan {
  const name = spec.name;
  const onHost = current.files.filter((file) => belongsTo(file, name));
  const writes = files.filter(
    (file) => onHost.find((h) => sameKey(h, file))?.contents !== file.contents,
  );
  const removes = onHost.filter((h) => !files.some((file) => sameKey(h, file)));
  const service = `${name}.service`;
  const socket = spec.socket ? `${name}.socket` : undefined;
  const serviceStatus = statusOf(current, service);
  const socketStatus = statusOf(current, `${name}.socket`);
  const upToDate = recorded !== undefined && sameFiles(recorded.files, files);
  const stale = serviceStatus.needsReload || (socket !== undefined && socketStatus.needsReload);
  const touched = writes.length > 0 || removes.length > 0 || stale;
  const changed = touched || !upToDate;
  const action: ChangeAction =
    changed && !upToDate ? (!recorded && onHost.length === 0 ? 'install' : 'update') : 'repair';
  const view: ServiceView = {
    name,
    service,
    socket,
    writes,
    removes,
    serviceStatus,
    socketStatus,
    changed,
    enableService: !socket && files.some((f) => f.kind === 'systemd' && f.name === service),
    gate: (units) => ({ kind: 'await-ready', service: name, action, units, spec, files }),
    command: (kind, unit) => ({ kind, service: name, unit }),
  };
  const activate = socket ? activateSocket(view, socket) : activateService(view);
  const starts = activate.some((step) => step.kind === 'await-ready');
  return {
    pull:
      starts && current.images[spec.image] === undefined
        ? [{ kind: 'pull-image', service: name, image: spec.image }]
        : [],
    prepare: changed ? prepareFiles(view) : [],
    reload: changed && touched,
    activate,
  };
}

/** Before the reload: retire what the new version no longer has, then write and remove files. */
function prepareFiles(view: ServiceView): Step[] {
  const { name, service, socketStatus, command } = view;
  const steps: Step[] = [];
  if (view.serviceStatus.fileState === 'enabled' && !view.enableService) {
    steps.push(command('disable', service));
  }
  if (!view.socket && view.removes.some((file) => file.name === `${name}.socket`)) {
    if (socketStatus.active === 'active') steps.push(command('stop', `${name}.socket`));
    if (socketStatus.fileState === 'enabled') steps.push(command('disable', `${name}.socket`));
  }
  for (const file of view.writes) {
    const kind = file.name.endsWith('.socket') ? 'write-socket' : 'write-unit';
    steps.push({ kind, service: name, file });
  }
  for (const { kind, name: fileName } of view.removes) {
    steps.push({ kind: 'remove-unit', service: name, file: { kind, name: fileName } });
  }
  return steps;
}

/** After the reload: a plain service is (re)started and gated. */
function activateService(view: ServiceView): Step[] {
  const { service, serviceStatus, command } = view;
  const steps: Step[] = [];
  if (view.enableService && serviceStatus.fileState !== 'enabled') {
    steps.push(command('enable', service));
  }
  if (view.changed || !isRunning(serviceStatus)) {
    if (serviceStatus.active === 'failed') steps.push(command('reset-failed', service));
    steps.push(command(isRunning(serviceStatus) ? 'restart' : 'start', service));
    steps.push(view.gate([service]));
  }
  return steps;
}

/**
 * After the reload: a socket-activated service gets its socket listening (Podman in Action §7.6);
 * the socket starts the service on the next connection, and one that runs already is moved over
 * now.
 */
function activateSocket(view: ServiceView, socket: string): Step[] {
  const { service, socketStatus, command } = view;
  const steps: Step[] = [];
  if (socketStatus.fileState !== 'enabled') steps.push(command('enable', socket));
  if (!view.changed && socketStatus.active === 'active') return steps;
  if (socketStatus.active === 'failed') steps.push(command('reset-failed', socket));
  if (socketStatus.active !== 'active') steps.push(command('start', socket));
  else if (view.writes.some((file) => file.name === socket)) steps.push(command('restart', socket));
  const serviceRuns = view.changed && isRunning(view.serviceStatus);
  if (serviceRuns) steps.push(command('restart', service));
  steps.push(view.gate(serviceRuns ? [socket, service] : [socket]));
  return steps;
}

/** A service that left the manifest: socket first (or a connection would start it again). */
function planRemoval(name: string, current: HostSnapshot): Step[] {
  const service = `${name}.service`;
  const socket = `${name}.socket`;
  const serviceStatus = statusOf(current, service);
  const socketStatus = statusOf(current, socket);
  const steps: Step[] = [];
  if (isUp(socketStatus)) steps.push({ kind: 'stop', service: name, unit: socket });
  if (isUp(serviceStatus)) steps.push({ kind: 'stop', service: name, unit: service });
  if (socketStatus.fileState === 'enabled')
    steps.push({ kind: 'disable', service: name, unit: socket });
  if (serviceStatus.fileState === 'enabled')
    steps.push({ kind: 'disable', service: name, unit: service });
  // systemd keeps a failed unit around until reset-failed, even after its file is gone.
  if (serviceStatus.active === 'failed')
    steps.push({ kind: 'reset-failed', service: name, unit: service });
  for (const file of current.files.filter((f) => belongsTo(f, name))) {
    steps.push({ kind: 'remove-unit', service: name, file: { kind: file.kind, name: file.name } });
  }
  return steps;
}

const NOT_FOUND: Omit<UnitStatus, 'unit'> = {
  load: 'not-found',
  active: 'inactive',
  sub: 'dead',
  result: 'success',
  restarts: 0,
  mainPid: 0,
  fileState: 'not-found',
  needsReload: false,
};

function statusOf(current: HostSnapshot, unit: string): UnitStatus {
  return current.units[unit] ?? { unit, ...NOT_FOUND };
}

/**
 * Running or on its way up (a start job already queued counts: starting it again would only
 * restart what systemd is about to start); a unit waiting to be restarted after a crash is not.
 */
export function isRunning(status: UnitStatus): boolean {
  if (status.active === 'inactive' && status.jobQueued) return true;
  if (status.active === 'activating') return status.sub !== 'auto-restart';
  return status.active === 'active' || status.active === 'reloading';
}

function isUp(status: UnitStatus): boolean {
  return status.active !== 'inactive' && status.active !== 'failed';
}

function sameKey(a: Pick<UnitFile, 'kind' | 'name'>, b: Pick<UnitFile, 'kind' | 'name'>): boolean {
  return a.kind === b.kind && a.name === b.name;
}

/** Same set of files with the same bytes, in any order. */
export function sameFiles(a: readonly UnitFile[], b: readonly UnitFile[]): boolean {
  return (
    a.length === b.length &&
    a.every((file) => b.some((other) => sameKey(file, other) && other.contents === file.contents))
  );
}
