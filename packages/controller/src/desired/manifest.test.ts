import {
  canonicalJson,
  generateSigningKey,
  ServiceSpec,
  signManifest,
  verifyManifest,
} from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  buildManifest,
  contentHash,
  manifestChanged,
  manifestContentJson,
  nextManifest,
} from './manifest.js';
import type { Group } from './membership.js';
import { resolveDesiredState, type Revision } from './resolve.js';
import { parseSelector, type Selector } from './selector.js';

const web = ServiceSpec.parse({ name: 'web', image: 'registry.example/acme/web:1.4' });
const db = ServiceSpec.parse({ name: 'db', image: 'registry.example/acme/db:16', env: { A: '1' } });
const at = new Date('2030-01-02T03:04:05.000Z');
const later = new Date('2030-01-02T04:00:00.000Z');
const key = generateSigningKey();

describe('buildManifest', () => {
  it('holds the device, generation, time and the services sorted by name', () => {
    expect(buildManifest('dev-1', [web, db], 7, at)).toEqual({
      device: 'dev-1',
      generation: 7,
      issuedAt: '2030-01-02T03:04:05.000Z',
      services: [db, web],
    });
  });

  it('is what the shared signer signs and the shared verifier accepts', () => {
    const signed = signManifest(buildManifest('dev-1', [web], 1, at), key.privateKeyPem);
    expect(verifyManifest(JSON.parse(JSON.stringify(signed)), [key.publicKeyPem]).ok).toBe(true);
  });
});

describe('manifestChanged', () => {
  const previous = signManifest(buildManifest('dev-1', [web, db], 3, at), key.privateKeyPem);

  it('ignores generation, issuedAt, signature and service order', () => {
    expect(manifestChanged(previous, buildManifest('dev-1', [db, web], 4, later))).toBe(false);
    expect(manifestChanged(previous, { device: 'dev-1', services: [web, db] })).toBe(false);
  });

  it('sees a changed image, env, an added or removed service, another device', () => {
    const moved = { ...web, image: 'registry.example/acme/web:1.5' };
    expect(manifestChanged(previous, buildManifest('dev-1', [moved, db], 4, at))).toBe(true);
    const env = { ...db, env: { A: '2' } };
    expect(manifestChanged(previous, buildManifest('dev-1', [web, env], 4, at))).toBe(true);
    expect(manifestChanged(previous, buildManifest('dev-1', [web], 4, at))).toBe(true);
    const cache = ServiceSpec.parse({ name: 'cache', image: 'registry.example/cache:1' });
    expect(manifestChanged(previous, buildManifest('dev-1', [web, db, cache], 4, at))).toBe(true);
    expect(manifestChanged(previous, buildManifest('dev-2', [web, db], 4, at))).toBe(true);
  });

  it('a first manifest is a change', () => {
    expect(manifestChanged(undefined, buildManifest('dev-1', [], 1, at))).toBe(true);
  });
});

describe('contentHash', () => {
  const sha256 = (text: string) => createHash('sha256').update(text).digest('base64url');

  it('is the SHA-256 of the canonical content JSON, so a stored manifest hashes the same', () => {
    const signed = signManifest(buildManifest('dev-1', [web, db], 3, at), key.privateKeyPem);
    const stored = JSON.parse(JSON.stringify(signed));
    expect(contentHash('dev-1', [web, db])).toBe(sha256(manifestContentJson(signed)));
    expect(contentHash(stored.device, stored.services)).toBe(contentHash('dev-1', [db, web]));
  });

  it('changes with an image, an env value, a service more or less, or another device', () => {
    const hash = contentHash('dev-1', [web, db]);
    const moved = { ...web, image: 'registry.example/acme/web:1.5' };
    expect(contentHash('dev-1', [moved, db])).not.toBe(hash);
    expect(contentHash('dev-1', [web, { ...db, env: { A: '2' } }])).not.toBe(hash);
    expect(contentHash('dev-1', [web])).not.toBe(hash);
    expect(contentHash('dev-2', [web, db])).not.toBe(hash);
    expect(contentHash('dev-1', [])).toBe(sha256('{"device":"dev-1","services":[]}'));
  });
});

describe('nextManifest', () => {
  it('starts at generation 1, bumps by one on a real change and not otherwise', () => {
    const first = nextManifest(undefined, 'dev-1', [web], at);
    expect(first).toMatchObject({ generation: 1, services: [web] });
    const signed = signManifest(first!, key.privateKeyPem);
    expect(nextManifest(signed, 'dev-1', [web], later)).toBeUndefined();
    const second = nextManifest(signed, 'dev-1', [web, db], later);
    expect(second).toEqual({
      device: 'dev-1',
      generation: 2,
      issuedAt: later.toISOString(),
      services: [db, web],
    });
    expect(nextManifest(second, 'dev-1', [db], later)?.generation).toBe(3);
  });
});

describe('determinism', () => {
  function selector(text: string): Selector {
    const result = parseSelector(text);
    if (!result.ok) throw new Error(result.error);
    return result.selector;
  }
  const revision = (number: number, name: string, image: string): Revision => ({
    number,
    spec: ServiceSpec.parse({ name, image, autoUpdate: 'registry', ports: ['8080:80'] }),
  });
  const groups: Group[] = [
    { name: 'fleet', priority: 0, selector: selector('tier') },
    { name: 'berlin', priority: 10, selector: selector('site=berlin,!canary') },
    { name: 'lab', priority: 10, members: ['dev-1'] },
  ];
  const assignments: [string, [string, Revision][]][] = [
    ['fleet', [['web', revision(1, 'web', 'registry.example/web:1')]]],
    ['berlin', [['db', revision(2, 'db', 'registry.example/db:2')]]],
    [
      'lab',
      [
        ['metrics', revision(5, 'metrics', 'registry.example/metrics:5')],
        ['db', revision(2, 'db', 'registry.example/db:2')],
      ],
    ],
  ];
  const groupPins: [string, [string, string][]][] = [
    ['berlin', [['web', `registry.example/web@sha256:${'b'.repeat(64)}`]]],
    ['lab', [['metrics', `registry.example/metrics@sha256:${'c'.repeat(64)}`]]],
  ];

  function manifestBytes(order: 'as-given' | 'reversed') {
    const flip = <T>(items: readonly T[]) => (order === 'reversed' ? [...items].reverse() : items);
    const labels =
      order === 'reversed' ? { tier: 'edge', site: 'berlin' } : { site: 'berlin', tier: 'edge' };
    const state = resolveDesiredState({
      device: { id: 'dev-1', labels },
      groups: flip(groups),
      assignments: new Map(flip(assignments).map(([group, rows]) => [group, new Map(flip(rows))])),
      pins: {
        devices: new Map(),
        groups: new Map(flip(groupPins).map(([group, rows]) => [group, new Map(flip(rows))])),
      },
      rollouts: new Map([['dev-1', new Map([['db', 'registry.example/db:2.1']])]]),
    });
    const manifest = buildManifest('dev-1', flip(state.services), 1, at);
    const signed = signManifest(manifest, key.privateKeyPem);
    return { state, json: JSON.stringify(signed), canonical: canonicalJson(signed) };
  }

  it('gives the same manifest bytes and signature whatever order the inputs come in', () => {
    const given = manifestBytes('as-given');
    const reversed = manifestBytes('reversed');
    expect(reversed.json).toBe(given.json);
    expect(reversed.canonical).toBe(given.canonical);
    expect(reversed.state).toEqual(given.state);
    expect(given.state.services.map((spec) => [spec.name, spec.image, spec.autoUpdate])).toEqual([
      ['db', 'registry.example/db:2.1', 'registry'],
      ['metrics', `registry.example/metrics@sha256:${'c'.repeat(64)}`, 'off'],
      ['web', `registry.example/web@sha256:${'b'.repeat(64)}`, 'off'],
    ]);
    expect(given.state.resolutions.find((r) => r.service === 'db')!.assignedBy).toEqual([
      'berlin',
      'lab',
    ]);
  });
});
