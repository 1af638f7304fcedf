/**
 * What a device is, measured against its desired manifest (docs/decisions/012-compliance.md).
 * Declared once, without imports so the CLI can name them cheaply: the type, the API's filter
 * and every count derive from it. Worst first: a device's overall state is the first of its
 * services' states in this order.
 */
export const COMPLIANCE_STATES = [
  'offline', 'unknown', 'failed', 'rolled-back', 'drifted', 'updating', 'in-sync',
] as const; // prettier-ignore
export type ComplianceState = (typeof COMPLIANCE_STATES)[number];
