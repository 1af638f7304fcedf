import type { CredentialIssuer } from '../enrollment/credentials.js';
import { conflict } from '../http/errors.js';
import type { MosquittoAccess } from './mosquitto-access.js';
import { mosquittoPasswordHash, newBrokerPassword } from './mosquitto-password.js';

/**
 * `credentials.broker` at enrollment: the device's own broker account, `{ username, password }`,
 * username = device id (the broker's ACL matches `%u` against the topic's device level). Issuing
 * again replaces the password; deleting the device removes the account.
 */
export function brokerCredentialIssuer(access: MosquittoAccess): CredentialIssuer {
  return {
    name: 'broker',
    async issue(device, tx) {
      if ((await access.reservedUsernames()).has(device.id)) {
        // A device named like the controller's account would get the controller's ACL.
        throw conflict(
          `device id ${device.id} is the name of a broker account that is not a device`,
        );
      }
      const password = newBrokerPassword();
      const passwordHash = mosquittoPasswordHash(password);
      await tx.brokerCredential.upsert({
        where: { deviceId: device.id },
        create: { deviceId: device.id, passwordHash },
        update: { passwordHash, createdAt: new Date() },
      });
      await access.apply(tx);
      return { username: device.id, password };
    },
    async revoke(deviceId, tx) {
      await tx.brokerCredential.deleteMany({ where: { deviceId } });
      await access.apply(tx);
    },
  };
}
