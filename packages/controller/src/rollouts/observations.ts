import type { PrismaClient } from '../db/client.js';
import type { DeviceObservation } from './progress.js';

type Db = Pick<PrismaClient, '$queryRawUnsafe'>;

interface DeviceRow {
  id: string;
  online: boolean;
  onlineSince: Date | null;
  appliedGeneration: number;
  image: string | null;
  ready: boolean | null;
}

/**
 * What the devices report about one service: liveness, the generation applied, the service's
 * image and readiness from the last state report, and rollbacks or failed applies since `since`.
 * Postgres picks the one service out of each state report and only failures out of the events:
 * a pass over a 10,000-device batch reads a few columns per device, not every report and every
 * applied event as JSON.
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
       s.value->>'image' AS image,
       CASE jsonb_typeof(s.value->'ready') WHEN 'boolean' THEN (s.value->'ready')::boolean END AS ready
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
  for (const device of devices) {
    const observation: DeviceObservation = {
      online: device.online,
      appliedGeneration: device.appliedGeneration,
      failures: [],
    };
    if (device.onlineSince) observation.onlineSince = new Date(device.onlineSince).getTime();
    if (device.image !== null) observation.image = device.image;
    if (device.ready !== null) observation.ready = device.ready;
    observations.set(device.id, observation);
  }
  for (const { deviceId, payload } of events) {
    const event = (typeof payload === 'string' ? JSON.parse(payload) : payload) as Record<
      string,
      unknown
    >;
    const failure = failureOf(event, service);
    if (failure) observations.get(deviceId)?.failures.push(failure);
  }
  return observations;
}

/** A rollback of the service, or an apply that failed or was rejected, as the agent reported it. */
function failureOf(
  event: Record<string, unknown>,
  service: string,
): { generation: number; reason: string } | undefined {
  const generation = typeof event.generation === 'number' ? event.generation : undefined;
  if (generation === undefined) return undefined;
  if (event.type === 'rollback' && event.service === service) {
    return { generation, reason: String(event.reason ?? 'rolled back by the agent') };
  }
  if (event.type === 'apply' && (event.result === 'failed' || event.result === 'rejected')) {
    const services = Array.isArray(event.services) ? (event.services as { name?: string }[]) : [];
    if (services.length > 0 && !services.some((s) => s.name === service)) return undefined;
    return {
      generation,
      reason: `apply ${String(event.result)}: ${String(event.reason ?? 'no reason given')}`,
    };
  }
  return undefined;
}
