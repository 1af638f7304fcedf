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
 * leaves the one-time token unused, so a device never ends up half enrolled.
 */
export interface CredentialIssuer {
  readonly name: string;
  issue(device: EnrolledDevice, tx: Transaction): Promise<Record<string, unknown>>;
}
