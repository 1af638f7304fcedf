import { ServiceSpec, type ServiceSpecInput } from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import type { Pins, ServiceTable } from './image-rule.js';
import type { Group, LabeledDevice } from './membership.js';
import {
  resolveDesiredState,
  resolveFleet,
  type DesiredSources,
  type DesiredStateInput,
  type Revision,
} from './resolve.js';
import { parseSelector, type Selector } from './selector.js';

function selector(text: string): Selector {
  const result = parseSelector(text);
  if (!result.ok) throw new Error(result.error);
  return result.selector;
}

const digest = (char: string) => `sha256:${char.repeat(64)}`;
const WEB_PIN_DEVICE = `registry.example/acme/web@${digest('d')}`;
const WEB_PIN_GROUP = `registry.example/acme/web@${digest('e')}`;
const WEB_ROLLOUT = 'registry.example/acme/web:1.6';

const revision = (number: number, input: ServiceSpecInput): Revision => ({
  number,
  spec: ServiceSpec.parse(input),
});
const web = (number: number, extra: Partial<ServiceSpecInput> = {}) =>
  revision(number, { name: 'web', image: `registry.example/acme/web:1.${number}`, ...extra });
const db = (number: number) =>
  revision(number, { name: 'db', image: `registry.example/acme/db:${number}` });

/** `{ owner: { service: value } }` as the nested maps the resolver reads. */
function table<T>(entries: Record<string, Record<string, T>>): ServiceTable<T> {
  return new Map(
    Object.entries(entries).map(([owner, byService]) => [
      owner,
      new Map(Object.entries(byService)),
    ]),
  );
}

const device: LabeledDevice = { id: 'dev-1', labels: { site: 'berlin', tier: 'edge' } };
const noPins: Pins = { devices: new Map(), groups: new Map() };

function resolve(
  groups: Group[],
  assignments: Record<string, Record<string, Revision>>,
  extra: Partial<Pick<DesiredStateInput, 'pins' | 'rollouts' | 'device'>> = {},
) {
  return resolveDesiredState({
    device,
    groups,
    assignments: table(assignments),
    pins: noPins,
    rollouts: new Map(),
    ...extra,
  });
}

const fleetGroup: Group = { name: 'fleet', priority: 0, selector: selector('tier') };
const berlinGroup: Group = { name: 'berlin', priority: 10, selector: selector('site=berlin') };
const edgeGroup: Group = { name: 'edge', priority: 10, selector: selector('tier=edge') };
const parisGroup: Group = { name: 'paris', priority: 99, selector: selector('site=paris') };

describe('resolveDesiredState: assignments', () => {
  it('runs the services of every group the device is in, sorted by name, image from the revision', () => {
    const state = resolve([fleetGroup, berlinGroup, parisGroup], {
      fleet: { web: web(4, { autoUpdate: 'registry' }) },
      berlin: { db: db(2) },
      paris: { cache: revision(1, { name: 'cache', image: 'registry.example/cache:1' }) },
    });
    expect(state.device).toBe('dev-1');
    expect(state.services.map((spec) => [spec.name, spec.image, spec.autoUpdate])).toEqual([
      ['db', 'registry.example/acme/db:2', 'off'],
      ['web', 'registry.example/acme/web:1.4', 'registry'],
    ]);
    expect(state.resolutions[1]).toEqual({
      service: 'web',
      revision: 4,
      priority: 0,
      assignedBy: ['fleet'],
      outranked: [],
      image: 'registry.example/acme/web:1.4',
      rule: 'revision',
      pinGroups: [],
      pinned: false,
      autoUpdate: 'registry',
      summary: 'revision 4 from fleet (priority 0); image from the revision',
    });
    expect(state.conflicts).toEqual([]);
  });

  it('a higher-priority group beats a lower one, and the loser is shown', () => {
    const state = resolve([fleetGroup, berlinGroup], {
      fleet: { web: web(4) },
      berlin: { web: web(2) },
    });
    expect(state.services.map((spec) => spec.image)).toEqual(['registry.example/acme/web:1.2']);
    expect(state.resolutions[0]).toMatchObject({
      revision: 2,
      priority: 10,
      assignedBy: ['berlin'],
      outranked: [{ group: 'fleet', priority: 0, revision: 4 }],
    });
  });

  it('the same revision from groups of equal priority is no conflict', () => {
    const state = resolve([edgeGroup, berlinGroup], {
      edge: { web: web(3) },
      berlin: { web: web(3) },
    });
    expect(state.conflicts).toEqual([]);
    expect(state.resolutions[0]).toMatchObject({ revision: 3, assignedBy: ['berlin', 'edge'] });
  });

  it('different revisions from groups of equal top priority are a conflict: the service is left out', () => {
    const state = resolve([edgeGroup, berlinGroup, fleetGroup], {
      edge: { web: web(3) },
      berlin: { web: web(4), db: db(1) },
      fleet: { web: web(1) },
    });
    expect(state.services.map((spec) => spec.name)).toEqual(['db']);
    expect(state.resolutions.map((resolution) => resolution.service)).toEqual(['db']);
    expect(state.conflicts).toEqual([
      {
        service: 'web',
        kind: 'revision',
        priority: 10,
        claims: [
          { group: 'berlin', priority: 10, revision: 4 },
          { group: 'edge', priority: 10, revision: 3 },
        ],
        message:
          'web: groups of priority 10 assign different revisions: berlin (revision 4), edge (revision 3)',
      },
    ]);
  });

  it('a conflict below the top priority does not matter', () => {
    const top: Group = { name: 'top', priority: 50, members: ['dev-1'] };
    const state = resolve([edgeGroup, berlinGroup, top], {
      edge: { web: web(3) },
      berlin: { web: web(4) },
      top: { web: web(5) },
    });
    expect(state.conflicts).toEqual([]);
    expect(state.resolutions[0]).toMatchObject({ revision: 5, assignedBy: ['top'] });
  });

  it('refuses a revision filed under another service name', () => {
    expect(() => resolve([fleetGroup], { fleet: { web: db(1) } })).toThrow(
      'assignments.fleet.web: revision 1 is of service db',
    );
  });
});

describe('resolveDesiredState: image precedence', () => {
  const groups = [fleetGroup, berlinGroup];
  const assignments = { fleet: { web: web(4, { autoUpdate: 'registry' }) } };
  const devicePins = table({ 'dev-1': { web: WEB_PIN_DEVICE } });
  const groupPins = table({ berlin: { web: WEB_PIN_GROUP } });
  const rollouts = table({ 'dev-1': { web: WEB_ROLLOUT } });
  const pick = (pins: Pins, withRollout: boolean) => {
    const state = resolve(groups, assignments, {
      pins,
      rollouts: withRollout ? rollouts : new Map(),
    });
    const [resolution] = state.resolutions;
    return [resolution!.rule, resolution!.image, resolution!.pinned, state.services[0]!.autoUpdate];
  };

  it('device pin beats group pin, rollout and revision', () => {
    expect(pick({ devices: devicePins, groups: groupPins }, true)).toEqual([
      'device pin',
      WEB_PIN_DEVICE,
      true,
      'off',
    ]);
  });

  it('group pin beats rollout and revision', () => {
    expect(pick({ devices: new Map(), groups: groupPins }, true)).toEqual([
      'group pin',
      WEB_PIN_GROUP,
      true,
      'off',
    ]);
  });

  it('a rollout that names the pinning group beats the group pin, but not a device pin', () => {
    const over = table({ 'dev-1': { web: { image: WEB_ROLLOUT, overGroupPin: true } } });
    const choose = (pins: Pins) => {
      const [resolution] = resolve(groups, assignments, { pins, rollouts: over }).resolutions;
      return [resolution!.rule, resolution!.image];
    };
    expect(choose({ devices: new Map(), groups: groupPins })).toEqual(['rollout', WEB_ROLLOUT]);
    expect(choose({ devices: devicePins, groups: groupPins })).toEqual([
      'device pin',
      WEB_PIN_DEVICE,
    ]);
  });

  it('rollout beats revision, and is not a pin', () => {
    expect(pick(noPins, true)).toEqual(['rollout', WEB_ROLLOUT, false, 'registry']);
  });

  it('with nothing else, the revision chooses', () => {
    expect(pick(noPins, false)).toEqual([
      'revision',
      'registry.example/acme/web:1.4',
      false,
      'registry',
    ]);
  });

  it('a pin from another device or from a group the device is not in changes nothing', () => {
    const pins = {
      devices: table({ 'dev-2': { web: WEB_PIN_DEVICE } }),
      groups: table({ paris: { web: WEB_PIN_GROUP } }),
    };
    expect(resolve([...groups, parisGroup], assignments, { pins }).resolutions[0]!.rule).toBe(
      'revision',
    );
  });
});

describe('resolveDesiredState: pins', () => {
  it('pinned means by digest with auto-update off, and the result is a valid spec', () => {
    const state = resolve(
      [fleetGroup],
      { fleet: { web: web(4, { autoUpdate: 'registry' }) } },
      {
        pins: { devices: table({ 'dev-1': { web: WEB_PIN_DEVICE } }), groups: new Map() },
      },
    );
    const [spec] = state.services;
    expect(spec!.image).toBe(WEB_PIN_DEVICE);
    expect(spec!.autoUpdate).toBe('off');
    expect(ServiceSpec.parse(spec)).toEqual(spec);
    expect(state.resolutions[0]!.summary).toBe(
      'revision 4 from fleet (priority 0); image pinned on the device, auto-update off',
    );
  });

  it('the highest-priority group with a pin decides, whichever group assigned the service', () => {
    const low: Group = { name: 'low', priority: 1, members: ['dev-1'] };
    const pins = {
      devices: new Map(),
      groups: table({
        low: { web: `registry.example/acme/web@${digest('1')}` },
        berlin: { web: WEB_PIN_GROUP },
      }),
    };
    // parisGroup (priority 99) pins nothing for web and does not hold the device anyway; edge
    // (priority 10) holds it but pins nothing: berlin's pin stands.
    const state = resolve(
      [fleetGroup, low, berlinGroup, edgeGroup],
      { fleet: { web: web(4) } },
      {
        pins,
      },
    );
    expect(state.resolutions[0]).toMatchObject({
      rule: 'group pin',
      image: WEB_PIN_GROUP,
      pinGroups: ['berlin'],
      summary: 'revision 4 from fleet (priority 0); image pinned by group berlin, auto-update off',
    });
  });

  it('groups of equal priority pinning different images are a conflict, unless a device pin decides', () => {
    const groupPins = table({
      berlin: { web: WEB_PIN_GROUP },
      edge: { web: `registry.example/acme/web@${digest('f')}` },
    });
    const groups = [fleetGroup, berlinGroup, edgeGroup];
    const assignments = { fleet: { web: web(4) } };
    const state = resolve(groups, assignments, { pins: { devices: new Map(), groups: groupPins } });
    expect(state.services).toEqual([]);
    expect(state.conflicts).toEqual([
      {
        service: 'web',
        kind: 'pin',
        priority: 10,
        claims: [
          { group: 'berlin', image: WEB_PIN_GROUP },
          { group: 'edge', image: `registry.example/acme/web@${digest('f')}` },
        ],
        message: `web: groups of priority 10 pin different images: berlin (${WEB_PIN_GROUP}), edge (registry.example/acme/web@${digest('f')})`,
      },
    ]);
    const devicePins = table({ 'dev-1': { web: WEB_PIN_DEVICE } });
    const settled = resolve(groups, assignments, {
      pins: { devices: devicePins, groups: groupPins },
    });
    expect(settled.conflicts).toEqual([]);
    expect(settled.services[0]!.image).toBe(WEB_PIN_DEVICE);
  });

  it('the same pin from groups of equal priority is no conflict', () => {
    const groupPins = table({ berlin: { web: WEB_PIN_GROUP }, edge: { web: WEB_PIN_GROUP } });
    const state = resolve(
      [fleetGroup, berlinGroup, edgeGroup],
      { fleet: { web: web(4) } },
      {
        pins: { devices: new Map(), groups: groupPins },
      },
    );
    expect(state.conflicts).toEqual([]);
    expect(state.resolutions[0]).toMatchObject({
      rule: 'group pin',
      pinGroups: ['berlin', 'edge'],
    });
  });

  it('rejects a pin that is not by digest, naming the pin', () => {
    const tagged = 'registry.example/acme/web:1.5';
    expect(() =>
      resolve(
        [fleetGroup],
        { fleet: { web: web(4) } },
        {
          pins: { devices: table({ 'dev-1': { web: tagged } }), groups: new Map() },
        },
      ),
    ).toThrow(
      'pins.devices.dev-1.web: a pin must be an image by digest (repository@sha256:…), got "registry.example/acme/web:1.5"',
    );
    expect(() =>
      resolve(
        [fleetGroup, berlinGroup],
        { fleet: { web: web(4) } },
        {
          pins: { devices: new Map(), groups: table({ berlin: { web: tagged } }) },
        },
      ),
    ).toThrow('pins.groups.berlin.web: a pin must be an image by digest');
  });
});

describe('resolveDesiredState: rollouts', () => {
  it('a rollout to a digest turns off registry auto-update, which can only follow a tag', () => {
    const image = `registry.example/acme/web@${digest('c')}`;
    const state = resolve(
      [fleetGroup],
      { fleet: { web: web(4, { autoUpdate: 'registry' }) } },
      {
        rollouts: table({ 'dev-1': { web: image } }),
      },
    );
    expect(state.services[0]).toMatchObject({ image, autoUpdate: 'off' });
    expect(state.resolutions[0]).toMatchObject({ rule: 'rollout', pinned: false });
    expect(ServiceSpec.safeParse(state.services[0]).success).toBe(true);
  });

  it('a rollout for a service the device does not run adds nothing', () => {
    const state = resolve(
      [fleetGroup],
      { fleet: { db: db(1) } },
      {
        rollouts: table({ 'dev-1': { web: WEB_ROLLOUT } }),
      },
    );
    expect(state.services.map((spec) => spec.name)).toEqual(['db']);
  });

  it('rejects a rollout image that is not one', () => {
    expect(() =>
      resolve(
        [fleetGroup],
        { fleet: { web: web(4) } },
        {
          rollouts: table({ 'dev-1': { web: 'Not An Image' } }),
        },
      ),
    ).toThrow('rollouts.dev-1.web: not an image reference: "Not An Image"');
  });
});

describe('resolveFleet', () => {
  it('gives each device what resolveDesiredState gives it', () => {
    const devices: LabeledDevice[] = [
      device,
      { id: 'dev-2', labels: { site: 'paris', tier: 'gw' } },
      { id: 'dev-3', labels: {} },
    ];
    const groups = [fleetGroup, berlinGroup, edgeGroup, parisGroup];
    const sources: DesiredSources = {
      assignments: table({
        fleet: { web: web(1) },
        paris: { web: web(2) },
        berlin: { db: db(1) },
        edge: { db: db(2) },
      }),
      pins: { devices: new Map(), groups: table({ paris: { web: WEB_PIN_GROUP } }) },
      rollouts: new Map(),
    };
    const states = resolveFleet(devices, groups, sources);
    expect([...states.keys()]).toEqual(['dev-1', 'dev-2', 'dev-3']);
    for (const each of devices) {
      expect(states.get(each.id)).toEqual(
        resolveDesiredState({ device: each, groups, ...sources }),
      );
    }
    expect(states.get('dev-1')!.conflicts.map((conflict) => conflict.service)).toEqual(['db']);
    expect(states.get('dev-2')!.services.map((spec) => spec.image)).toEqual([WEB_PIN_GROUP]);
    expect(states.get('dev-3')!.services).toEqual([]);
  });
});
