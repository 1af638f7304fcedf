import type { SigningKey } from '@podfleet/shared';
import type { CredentialIssuer } from '../enrollment/credentials.js';

/**
 * `credentials.controller` at enrollment: the public key the device is to trust for manifests
 * (its agent config's `controller.publicKeys`). Later keys reach it through rotation.
 */
export function controllerKeyIssuer(key: SigningKey): CredentialIssuer {
  return {
    name: 'controller',
    async issue() {
      return { publicKeys: [key.publicKeyPem], keyId: key.keyId };
    },
  };
}
