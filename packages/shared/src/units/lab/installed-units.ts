import type { ServiceSpec } from '../../spec/service-spec.js';
import { type UnitFile, type UnitStyle, renderUnits } from '../render.js';
import { quadletDryRun } from './quadlet.js';

/**
 * The systemd units a device ends up with for a spec: our `systemd` files, and for the `quadlet`
 * style the service Quadlet (in the rootfs) generates from our `.container`.
 */
export async function installedUnits(
  rootfs: string,
  spec: ServiceSpec,
  style: UnitStyle,
): Promise<UnitFile[]> {
  const files = renderUnits(spec, { style });
  const units = files.filter((file) => file.kind === 'systemd');
  if (style === 'quadlet') {
    const { units: generated } = await quadletDryRun(rootfs, files, spec.scope);
    const name = `${spec.name}.service`;
    const contents = generated.get(name);
    if (contents === undefined) throw new Error(`Quadlet wrote no ${name}`);
    units.push({ name, kind: 'systemd', contents });
  }
  return units;
}
