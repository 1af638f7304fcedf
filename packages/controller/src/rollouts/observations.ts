import { DeviceFailure, type FailureReason } from '@podfleet/shared';
import type { PrismaClient } from '../db/client.js';
import type { ServiceFailure } from './policy/success.js';
import type { DeviceObservation } from './progress.js';

type Db = Pick<PrismaClient, '$queryRawUnsafe'>;

interface DeviceRow {
  id: string;
  online: boolean;
  onlineSince: Date | null;
  appliedGeneration: number;
  labels: unknown;
  image: string | null;
  ready: boolean | null;
  restarts: number | null;
  activeSince: string | null;
  /** When a controller received the last state report (ms), by its own clock. */
  reportedAt: number | null;
}

/**
 * What the devices report about one service: liveness, labels, the generation applied, the
 * service's image, readiness, restart count and active-since from the last state report, and
 * rollbacks or failed applies since `since`. Postgres picks the one service out of each state
 * report and only failures out of the events: a pass over a 10,000-device batch reads a few
 * columns per device, not every report and every applied event as JSON.
 */
export async function observeDevices(
  db: Db,
  deviceIds: readonly string[],
  service: string,
  since: Date,
): Promise<Map<string, DeviceObservation>> {
  const observations = new Map<string, DeviceObservation>();
  if (deviceIds.length === 0) return observations;
  // One after the other: inside a transaction both would share one connection.
  const devices = await db.$queryRawUnsafe<DeviceRow[]>(
    `SELECT d.id, d.online, d.online_since AS "onlineSince", d.applied_generation AS "appliedGeneration",
       d.labels, s.value->>'image' AS image,
       CASE jsonb_typeof(s.value->'ready') WHEN 'boolean' THEN (s.value->'ready')::boolean END AS ready,
       CASE jsonb_typeof(s.value->'unit'->'restarts') WHEN 'number' THEN (s.value->'unit'->>'restarts')::int END AS restarts,
       s.value->'unit'->>'activeSince' AS "activeSince",
       (extract(epoch FROM d.state_received_at) * 1000)::float8 AS "reportedAt"
     FROM devices d
     LEFT JOIN LATERAL (
       SELECT value FROM jsonb_array_elements(
         CASE WHEN jsonb_typeof(d.last_state->'services') = 'array' THEN d.last_state->'services' ELSE '[]'::jsonb END
       ) WHERE value->>'name' = $2 LIMIT 1
     ) s ON true
     WHERE d.id = ANY($1::text[])`,
    [...deviceIds],
    service,
  );
  const events = await db.$queryRawUnsafe<{ deviceId: string; payload: unknown }[]>(
    `SELECT device_id AS "deviceId", payload FROM device_events
     WHERE device_id = ANY($1::text[]) AND received_at >= $2::timestamptz
       AND (type = 'rollback' OR (type = 'apply' AND payload->>'result' IN ('failed', 'rejected')))`,
    [...deviceIds],
    since.toISOString(),
  );
  const failures = new Map<string, ServiceFailure[]>();
  for (const { deviceId, payload } of events) {
    const event = (typeof payload === 'string' ? JSON.parse(payload) : payload) as Record<
      string,
      unknown
    >;
    const failure = failureOf(event, service);
    if (!failure) continue;
    const list = failures.get(deviceId);
    if (list) list.push(failure);
    else failures.set(deviceId, [failure]);
  }
  for (const device of devices) {
    const observation: DeviceObservation = {
      online: device.online,
      appliedGeneration: device.appliedGeneration,
      labels: (typeof device.labels === 'string'
        ? JSON.parse(device.labels)
        : device.labels) as Record<string, string>,
      failures: failures.get(device.id) ?? [],
    };
    if (device.onlineSince) observation.onlineSince = new Date(device.onlineSince).getTime();
    if (device.image !== null) observation.image = device.image;
    if (device.ready !== null) observation.ready = device.ready;
    if (device.restarts !== null) observation.restarts = device.restarts;
    const activeSince = device.activeSince === null ? NaN : Date.parse(device.activeSince);
    if (!Number.isNaN(activeSince)) observation.activeSince = activeSince;
    // The controller's receive time, not the device's reportedAt: the bake compares two reports'
    // times, and a device's clock may jump between them.
    if (device.reportedAt !== null) observation.reportedAt = Number(device.reportedAt);
    observations.set(device.id, observation);
  }
  return observations;
}

/**
 * A rollback of the service, or an apply that failed or was rejected, as the agent reported it:
 * with the structured failure when the agent sent one, else its reason read from the event (a
 * rollback is rolled-back, a rejected manifest rejected-manifest, a failed apply pull-failed when
 * it says so and unhealthy otherwise).
 */
export function failureOf(
  event: Record<string, unknown>,
  service: string,
): ServiceFailure | undefined {
  const generation = typeof event.generation === 'number' ? event.generation : undefined;
  if (generation === undefined) return undefined;
  const sent = DeviceFailure.safeParse(event.failure);
  const structured = sent.success ? sent.data : undefined;
  const failure = (reason: FailureReason, detail: string): ServiceFailure => {
    const found: ServiceFailure = { generation, reason, detail };
    if (structured?.unit !== undefined) found.unit = structured.unit;
    if (structured && structured.journal.length > 0) found.journal = structured.journal;
    return found;
  };
  if (event.type === 'rollback' && event.service === service) {
    const detail = String(event.reason ?? 'rolled back by the agent');
    return failure(structured?.reason ?? 'rolled-back', detail);
  }
  if (event.type === 'apply' && (event.result === 'failed' || event.result === 'rejected')) {
    const services = Array.isArray(event.services) ? (event.services as { name?: string }[]) : [];
    if (services.length > 0 && !services.some((s) => s.name === service)) return undefined;
    const said = String(event.reason ?? 'no reason given');
    const guessed: FailureReason =
      event.result === 'rejected'
        ? 'rejected-manifest'
        : /\bpull/i.test(said)
          ? 'pull-failed'
          : 'unhealthy';
    return failure(structured?.reason ?? guessed, `apply ${String(event.result)}: ${said}`);
  }
  return undefined;
}
