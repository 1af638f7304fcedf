import type { RolloutSpec } from '@podfleet/shared';
import type { PrismaClient } from '../db/client.js';
import { groupsOf } from '../desired/membership.js';
import { resolveFleet } from '../desired/resolve.js';
import { matchesSelector, parseSelector, type Selector } from '../desired/selector.js';
import { loadFleet } from '../desired/sources.js';
import { HttpError } from '../http/errors.js';
import type { RolloutCandidate } from './plan.js';
import { loadRolloutOverrides } from './overrides.js';

type Db = Pick<
  PrismaClient,
  'device' | 'group' | 'assignment' | 'pin' | 'rolloutDevice' | '$queryRawUnsafe'
>;

/**
 * The devices a rollout spec targets — members of its groups (all devices when it names none),
 * narrowed by its selector — that run the service now, with the image desired state gives them.
 */
export async function rolloutCandidates(db: Db, spec: RolloutSpec): Promise<RolloutCandidate[]> {
  const fleet = await loadFleet(db, await loadRolloutOverrides(db));
  const known = new Set(fleet.groups.map((g) => g.name));
  const unknown = spec.targets.groups.filter((name) => !known.has(name));
  if (unknown.length > 0) throw new HttpError(404, `group ${unknown.join(', ')} not found`);
  let selector: Selector | undefined;
  if (spec.targets.selector !== undefined) {
    const parsed = parseSelector(spec.targets.selector);
    if (!parsed.ok) throw new HttpError(400, `targets.selector: ${parsed.message}`);
    selector = parsed.selector;
  }
  const targetGroups = new Set(spec.targets.groups);
  const targeted = fleet.devices.filter((device) => {
    if (selector && !matchesSelector(selector, device.labels)) return false;
    return (
      targetGroups.size === 0 ||
      groupsOf(device, fleet.groups).some((g) => targetGroups.has(g.name))
    );
  });
  const states = resolveFleet(targeted, fleet.groups, fleet);
  const candidates: RolloutCandidate[] = [];
  for (const device of targeted) {
    const resolution = states.get(device.id)?.resolutions.find((r) => r.service === spec.service);
    if (!resolution) continue;
    const candidate: RolloutCandidate = {
      id: device.id,
      labels: device.labels,
      image: resolution.image,
    };
    if (resolution.rule === 'device pin') candidate.pinnedBy = { kind: 'device' };
    else if (resolution.rule === 'group pin')
      candidate.pinnedBy = { kind: 'group', groups: resolution.pinGroups };
    candidates.push(candidate);
  }
  return candidates;
}
