import { describe, expect, it } from 'vitest';
import { DeviceEvent, generateSigningKey, signManifest } from '@podfleet/shared';
import { VirtualClock } from '../clock/clock.js';
import { acceptManifest, rejectionEvent, type Acceptance } from './accept.js';

const controller = generateSigningKey();
const impostor = generateSigningKey();
const context = { device: 'dev-1', trustedKeys: [controller.publicKeyPem], appliedGeneration: 5 };

function signed(overrides: { device?: string; generation?: number } = {}, key = controller) {
  return signManifest(
    {
      device: overrides.device ?? 'dev-1',
      generation: overrides.generation ?? 6,
      issuedAt: '2026-01-01T00:00:00.000Z',
      services: [{ name: 'web', image: 'registry.example/acme/web:1.4' }],
    },
    key.privateKeyPem,
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
    });
  });
});
