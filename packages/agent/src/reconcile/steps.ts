import type { ServiceSpec, UnitFile } from '@podfleet/shared';

/** Why a service's units are (re)started: it is new, it changed, or the host drifted from it. */
export type ChangeAction = 'install' | 'update' | 'repair';

export type UnitCommand = 'enable' | 'disable' | 'start' | 'restart' | 'stop' | 'reset-failed';

/** One thing the executor does to the host. Every step but daemon-reload belongs to a service. */
export type Step =
  | { kind: 'pull-image'; service: string; image: string }
  | { kind: 'write-unit'; service: string; file: UnitFile }
  | { kind: 'write-socket'; service: string; file: UnitFile }
  | { kind: 'remove-unit'; service: string; file: Pick<UnitFile, 'kind' | 'name'> }
  | { kind: 'daemon-reload' }
  | { kind: UnitCommand; service: string; unit: string }
  | {
      kind: 'await-ready';
      service: string;
      action: ChangeAction;
      /** The units that must come up: the service, or its socket (and the service if it runs). */
      units: string[];
      /** The version being gated: recorded as the last good one when it passes. */
      spec: ServiceSpec;
      files: UnitFile[];
    };

export type ServiceStep = Exclude<Step, { kind: 'daemon-reload' }>;

/** One line for logs and errors: `restart web.service`, `pull registry.example/web:1.4`. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'pull-image':
      return `pull ${step.image}`;
    case 'write-unit':
    case 'write-socket':
      return `write ${step.file.name}`;
    case 'remove-unit':
      return `remove ${step.file.name}`;
    case 'daemon-reload':
      return 'daemon-reload';
    case 'await-ready':
      return `await ready ${step.units.join(' ')}`;
    default:
      return `${step.kind} ${step.unit}`;
  }
}
