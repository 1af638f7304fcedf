import { describe, expect, it } from 'vitest';
import { DeviceEvent, endorseKey, generateSigningKey, signManifest } from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import { acceptManifest, rejectionEvent, type Acceptance } from './accept.js';

const controller = generateSigningKey();
const impostor = generateSigningKey();
const context = { device: 'dev-1', trustedKeys: [controller.publicKeyPem], appliedGeneration: 5 };

function signed(
  overrides: { device?: string; generation?: number } = {},
  key = controller,
  endorsements: Parameters<typeof signManifest>[2] = [],
) {
  return signManifest(
    {
      device: overrides.device ?? 'dev-1',
      generation: overrides.generation ?? 6,
      issuedAt: '2026-01-01T00:00:00.000Z',
      services: [{ name: 'web', image: 'registry.example/acme/web:1.4' }],
    },
    key.privateKeyPem,
    endorsements,
  );
}

function rejected(acceptance: Acceptance) {
  if (acceptance.ok) throw new Error('expected a rejection');
  return acceptance;
}

describe('acceptManifest', () => {
  it('accepts a newer manifest for this device signed by a trusted key, as JSON text too', () => {
    const manifest = signed();
    expect(acceptManifest(manifest, context)).toEqual({ ok: true, manifest });
    expect(acceptManifest(JSON.stringify(manifest), context).ok).toBe(true);
    expect(acceptManifest(Buffer.from(JSON.stringify(manifest)), context).ok).toBe(true);
  });

  it('rejects a manifest signed by an unknown key', () => {
    const result = rejected(acceptManifest(signed({}, impostor), context));
    expect(result.reason).toBe(`signed by unknown key ${impostor.keyId}`);
    expect(result.generation).toBe(6);
  });

  it('rejects a manifest changed after signing', () => {
    const tampered = { ...signed(), services: [{ name: 'web', image: 'evil.example/miner:1' }] };
    expect(rejected(acceptManifest(tampered, context)).reason).toBe('signature does not verify');
  });

  it('rejects a replayed or old generation', () => {
    expect(rejected(acceptManifest(signed({ generation: 5 }), context)).reason).toBe(
      'generation 5 is not newer than applied generation 5',
    );
    expect(rejected(acceptManifest(signed({ generation: 3 }), context)).generation).toBe(3);
  });

  it('rejects a manifest for another device', () => {
    expect(rejected(acceptManifest(signed({ device: 'dev-2' }), context)).reason).toBe(
      'manifest is for device dev-2, not dev-1',
    );
  });

  it('rejects an invalid manifest with the field and the reason', () => {
    const manifest = signed();
    const invalid = { ...manifest, services: [{ name: 'Web!', image: 'registry.example/a:1' }] };
    const result = rejected(acceptManifest(invalid, context));
    expect(result.reason).toMatch(/^invalid manifest: services\[0\]\.name: must match/);
    expect(rejected(acceptManifest('{not json', context))).toEqual({
      ok: false,
      reason: 'manifest is not JSON',
      generation: 0,
    });
    expect(rejected(acceptManifest({ generation: 'x' }, context)).generation).toBe(0);
  });

  it('reports a rejection as an apply event with result rejected', () => {
    const clock = new VirtualClock(Date.UTC(2026, 5, 1));
    const event = rejectionEvent(rejected(acceptManifest(signed({ generation: 2 }), context)), {
      device: 'dev-1',
      clock,
    });
    expect(DeviceEvent.parse(event)).toEqual(event);
    expect(event).toMatchObject({
      type: 'apply',
      device: 'dev-1',
      at: '2026-06-01T00:00:00.000Z',
      generation: 2,
      result: 'rejected',
      services: [],
      reason: 'generation 2 is not newer than applied generation 5',
      // For the rollout policy: no unit was touched, so no journal lines.
      failure: {
        reason: 'rejected-manifest',
        detail: 'generation 2 is not newer than applied generation 5',
        journal: [],
      },
    });
  });
});

describe('acceptManifest across a controller key rotation', () => {
  const next = generateSigningKey();
  const announced = endorseKey(next.publicKeyPem, controller.privateKeyPem);

  it('accepts a manifest signed by a new key the trusted key announced, and says to trust it alone', () => {
    const result = acceptManifest(signed({ generation: 7 }, next, [announced]), context);
    expect(result).toMatchObject({ ok: true, trustedKeys: [announced.publicKey] });
  });

  it('after the rotation, refuses manifests signed by the old key', () => {
    const after = { ...context, trustedKeys: [announced.publicKey], appliedGeneration: 7 };
    expect(rejected(acceptManifest(signed({ generation: 8 }), after)).reason).toBe(
      `signed by unknown key ${controller.keyId}`,
    );
    expect(acceptManifest(signed({ generation: 8 }, next, [announced]), after)).toEqual({
      ok: true,
      manifest: expect.objectContaining({ generation: 8 }),
    });
  });

  it('refuses a new key announced by a key it does not trust', () => {
    const forged = endorseKey(next.publicKeyPem, impostor.privateKeyPem);
    expect(
      rejected(acceptManifest(signed({ generation: 7 }, next, [forged]), context)).reason,
    ).toBe(`signed by unknown key ${next.keyId}`);
  });

  it('refuses a rotation carried by a replayed older generation, and keeps the trust as it was', () => {
    const replay = acceptManifest(signed({ generation: 4 }, next, [announced]), context);
    expect(rejected(replay).reason).toBe('generation 4 is not newer than applied generation 5');
    expect('trustedKeys' in replay).toBe(false);
  });

  it('refuses a rotation manifest whose signature was tampered with', () => {
    const manifest = signed({ generation: 7 }, next, [announced]);
    const tampered = { ...manifest, generation: 9 };
    expect(rejected(acceptManifest(tampered, context)).reason).toBe('signature does not verify');
  });
});
