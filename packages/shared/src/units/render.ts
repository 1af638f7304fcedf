import { ServiceSpec, type ServiceSpecInput } from '../spec/service-spec.js';
import { renderQuadletUnit } from './quadlet-unit.js';
import { renderServiceUnit } from './service-unit.js';
import { renderSocketUnit } from './socket-unit.js';

export type UnitStyle = 'service' | 'quadlet';
export type UnitScope = ServiceSpec['scope'];

/** One file to install: `systemd` files go to a systemd unit directory, `quadlet` ones to Quadlet's. */
export interface UnitFile {
  name: string;
  kind: 'systemd' | 'quadlet';
  contents: string;
}

export interface RenderOptions {
  style: UnitStyle;
  /** Overrides the spec's scope (system: rootful, /etc/…; user: rootless, ~/.config/…). */
  scope?: UnitScope;
  podman?: string;
}

/** Every unit file for one service. Pure and deterministic: the same spec gives the same bytes. */
export function renderUnits(
  input: ServiceSpec | ServiceSpecInput,
  options: RenderOptions,
): UnitFile[] {
  const parsed = ServiceSpec.parse(input);
  const spec = options.scope ? { ...parsed, scope: options.scope } : parsed;
  const files: UnitFile[] =
    options.style === 'quadlet'
      ? [{ name: `${spec.name}.container`, kind: 'quadlet', contents: renderQuadletUnit(spec) }]
      : [
          {
            name: `${spec.name}.service`,
            kind: 'systemd',
            contents: renderServiceUnit(spec, options.podman ? { podman: options.podman } : {}),
          },
        ];
  const socket = renderSocketUnit(spec);
  if (socket) files.push({ name: `${spec.name}.socket`, kind: 'systemd', contents: socket });
  return files;
}

/** Where a unit file of this kind is installed; user paths are relative to the user's home. */
export function unitDirectory(kind: UnitFile['kind'], scope: UnitScope): string {
  if (kind === 'quadlet')
    return scope === 'user' ? '.config/containers/systemd' : '/etc/containers/systemd';
  return scope === 'user' ? '.config/systemd/user' : '/etc/systemd/system';
}

/** Quadlet from Podman 4.4 on; `podman generate systemd --new` units before that. */
export function unitStyleFor(podmanVersion: string): UnitStyle {
  const match = /(\d+)\.(\d+)/.exec(podmanVersion);
  if (!match) throw new Error(`not a Podman version: ${podmanVersion}`);
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 4 || (major === 4 && minor >= 4) ? 'quadlet' : 'service';
}
