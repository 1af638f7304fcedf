import type { FastifyInstance } from 'fastify';
import type { Transaction } from '../audit/change.js';

/** The device as enrollment created it. */
export interface EnrolledDevice {
  id: string;
  labels: Record<string, string>;
  /** The group the enrollment token put it in, if any. */
  group: string | null;
}

/**
 * The extension point for what a device receives at enrollment besides its record: broker
 * credentials and the controller's manifest-verification key come through here (the enrollment
 * issue). Each issuer runs inside the enrollment transaction, after the device row is written;
 * what it returns reaches the device as `credentials[name]`. A throw aborts the enrollment and
 * leaves the one-time token unused, so a device never ends up half enrolled. An issuer that also
 * writes outside the database (a broker's password file) puts it back with onRollback
 * (audit/change.ts) when the transaction rolls back, whichever step failed.
 */
export interface CredentialIssuer {
  readonly name: string;
  /**
   * Issues the device's credentials (again, when it has some: the old ones stop working). Both
   * POST /v1/enroll and SSH enrollment call it.
   */
  issue(device: EnrolledDevice, tx: Transaction): Promise<Record<string, unknown>>;
  /**
   * Withdraws what issue() gave, inside the transaction that deletes the device: a throw keeps the
   * device, so that a device is never gone while its credentials still work.
   */
  revoke?(deviceId: string, tx: Transaction): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The enrollment's credential issuers, for the routes that revoke (set by enrollRoute). */
    credentialIssuers?: readonly CredentialIssuer[];
  }
}

/** Registers the issuers on the API, so that deleting a device revokes what they issued. */
export function registerCredentialIssuers(
  app: FastifyInstance,
  issuers: readonly CredentialIssuer[],
): void {
  app.decorate('credentialIssuers', issuers);
}

/** Issues every credential a device receives at enrollment, by issuer name. */
export async function issueCredentials(
  issuers: readonly CredentialIssuer[],
  device: EnrolledDevice,
  tx: Transaction,
): Promise<Record<string, Record<string, unknown>>> {
  const credentials: Record<string, Record<string, unknown>> = {};
  for (const issuer of issuers) credentials[issuer.name] = await issuer.issue(device, tx);
  return credentials;
}

/** Revokes every credential of a device being deleted (inside the deleting transaction). */
export async function revokeCredentials(
  app: FastifyInstance,
  deviceId: string,
  tx: Transaction,
): Promise<void> {
  for (const issuer of app.credentialIssuers ?? []) await issuer.revoke?.(deviceId, tx);
}
