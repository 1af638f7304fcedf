import { z } from 'zod';
import { ServiceSpec } from '../spec/service-spec.js';
import { DeviceId } from './device-id.js';
import { KeyEndorsement } from './key-endorsement.js';

export const ManifestSignature = z.strictObject({
  alg: z.literal('ed25519'),
  /** Which controller key signed it (see keyIdOf). */
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  /** Base64 of the Ed25519 signature over canonicalJson(manifest without signature). */
  value: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, { message: 'not a base64 Ed25519 signature' }),
});

const manifestBody = {
  device: DeviceId,
  /** Grows on every change to this device's desired state; agents refuse one not newer than theirs. */
  generation: z.number().int().positive(),
  issuedAt: z.iso.datetime(),
  services: z.array(ServiceSpec).superRefine((services, ctx) => {
    const seen = new Set<string>();
    services.forEach((service, index) => {
      if (seen.has(service.name)) {
        ctx.addIssue({
          code: 'custom',
          path: [index, 'name'],
          message: `duplicate service ${service.name}`,
        });
      }
      seen.add(service.name);
    });
  }),
  /** Key rotations up to the signing key, oldest first (see KeyEndorsement); absent before any. */
  keyChain: z.array(KeyEndorsement).max(32).optional(),
};

/** What the controller publishes, retained, to pf/v1/dev/{id}/desired. */
export const DeviceManifest = z.strictObject({ ...manifestBody, signature: ManifestSignature });
export type DeviceManifest = z.output<typeof DeviceManifest>;

export const UnsignedManifest = z.strictObject(manifestBody);
export type UnsignedManifest = z.input<typeof UnsignedManifest>;
