import type { DeviceEvent, OnlineStatus, StateReport } from '@podfleet/shared';
import type { SqlSession } from '../db/session.js';

/**
 * What one batch of device messages writes, each with when this controller received it: the
 * controller's clock orders reports and dates liveness, never the device's (docs/security.md).
 */
export interface IngestBatch {
  states: { report: StateReport; receivedAt: Date }[];
  events: { event: DeviceEvent; receivedAt: Date }[];
  online: { device: string; status: OnlineStatus; at: Date }[];
}

export interface IngestCounts {
  states: number;
  events: number;
  online: number;
  /** Messages for devices the controller does not know (not enrolled, or deleted). */
  unknownDevices: number;
}

/**
 * Writes a batch with one statement per kind (`unnest` of parallel arrays), so that ingest costs a
 * few round trips per batch, not one per message; in one transaction when it takes more than one
 * statement. Replaying a batch changes nothing: events are keyed by their id, and a state report
 * received before the stored one is ignored.
 */
export async function storeBatch(session: SqlSession, batch: IngestBatch): Promise<IngestCounts> {
  const kinds = [batch.states, batch.events, batch.online].filter((list) => list.length > 0);
  const store = async (tx: SqlSession): Promise<IngestCounts> => {
    const states = await storeStates(
      tx,
      latestPerDevice(
        batch.states,
        (s) => s.report.device,
        (s) => s.receivedAt.getTime(),
      ),
    );
    const events = await storeEvents(tx, batch.events);
    const online = await storeOnline(
      tx,
      latestPerDevice(
        batch.online,
        (o) => o.device,
        (o) => o.at.getTime(),
      ),
    );
    const others = [
      ...batch.states.map((s) => s.report.device),
      ...batch.online.map((o) => o.device),
    ];
    const known = await knownDevices(tx, others);
    const unknownDevices = others.filter((device) => !known.has(device)).length + events.unknown;
    return { states, events: events.stored, online, unknownDevices };
  };
  return kinds.length > 1 ? session.transaction(store) : store(session);
}

async function storeStates(tx: SqlSession, states: IngestBatch['states']): Promise<number> {
  if (states.length === 0) return 0;
  // One JSON array of [report, receivedAt], as in storeEvents; the columns are read out of each
  // report in SQL. Newer is what this controller received later: a device's clock may jump.
  const [row] = await tx.query<{ stored: number }>(
    `WITH updated AS (
       UPDATE devices AS d SET
         last_state = u.state, applied_generation = (u.state->>'generation')::int,
         agent_version = u.state->'agent'->>'version', podman_version = u.state->'host'->>'podman',
         systemd_version = u.state->'host'->>'systemd', arch = u.state->'host'->>'arch',
         unit_style = (u.state->'host'->>'unitStyle')::unit_style, online = true,
         online_since = CASE WHEN d.online AND d.online_since IS NOT NULL THEN d.online_since ELSE u.at END,
         last_seen = GREATEST(d.last_seen, u.at), state_received_at = u.at, updated_at = now()
       FROM (
         SELECT e->0->>'device' AS id, e->0 AS state, (e->>1)::timestamptz AS at
         FROM jsonb_array_elements($1::jsonb) AS e
       ) AS u
       WHERE d.id = u.id AND (d.state_received_at IS NULL OR d.state_received_at <= u.at)
       RETURNING 1
     )
     SELECT count(*)::int AS stored FROM updated`,
    [JSON.stringify(states.map((s) => [s.report, s.receivedAt]))],
  );
  return row!.stored;
}

async function storeEvents(
  tx: SqlSession,
  events: IngestBatch['events'],
): Promise<{ stored: number; unknown: number }> {
  if (events.length === 0) return { stored: 0, unknown: 0 };
  // One JSON array, not five parallel arrays: JSON.stringify is native, where pg escapes every
  // element of a text array in JavaScript (most of ingest's database CPU in Node, profiled).
  // Joined with devices: an event of an unknown device is counted and dropped instead of failing
  // the batch. Counted in SQL: the rows themselves need not travel back.
  const [counts] = await tx.query<{ stored: number; unknown: number }>(
    `WITH u AS (
       SELECT (e->0->>'id')::uuid AS id, e->0->>'device' AS device, e->0->>'type' AS type,
              (e->0->>'at')::timestamptz AS at, (e->>1)::timestamptz AS received_at, e->0 AS payload
       FROM jsonb_array_elements($1::jsonb) AS e
     ), known AS (
       SELECT u.* FROM u JOIN devices d ON d.id = u.device
     ), stored AS (
       INSERT INTO device_events (id, device_id, type, at, received_at, payload)
       SELECT id, device, type, at, received_at, payload FROM known
       ON CONFLICT (id) DO NOTHING
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM stored)::int AS stored,
            ((SELECT count(*) FROM u) - (SELECT count(*) FROM known))::int AS unknown`,
    [JSON.stringify(events.map((e) => [e.event, e.receivedAt]))],
  );
  return counts!;
}

async function storeOnline(tx: SqlSession, updates: IngestBatch['online']): Promise<number> {
  if (updates.length === 0) return 0;
  const rows = await tx.query<{ id: string }>(
    `UPDATE devices AS d SET online = u.online, last_seen = GREATEST(d.last_seen, u.at), updated_at = now(),
       online_since = CASE WHEN u.online AND (NOT d.online OR d.online_since IS NULL) THEN u.at ELSE d.online_since END
     FROM unnest($1::text[], $2::boolean[], $3::timestamptz[]) AS u(id, online, at)
     WHERE d.id = u.id
     RETURNING d.id`,
    [
      updates.map((u) => u.device),
      updates.map((u) => u.status === 'online'),
      updates.map((u) => u.at.toISOString()),
    ],
  );
  return rows.length;
}

async function knownDevices(tx: SqlSession, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await tx.query<{ id: string }>('SELECT id FROM devices WHERE id = ANY($1::text[])', [
    [...new Set(ids)],
  ]);
  return new Set(rows.map((row) => row.id));
}

/** UPDATE … FROM with two source rows for one device is undefined: keep the newest of each. */
function latestPerDevice<T>(
  items: T[],
  device: (item: T) => string,
  time: (item: T) => number,
): T[] {
  const latest = new Map<string, T>();
  for (const item of items) {
    const current = latest.get(device(item));
    if (!current || time(item) >= time(current)) latest.set(device(item), item);
  }
  return [...latest.values()];
}

/** Devices not heard from for `timeoutSeconds` are offline (their LWT may never have arrived). */
export async function markSilentDevicesOffline(
  session: SqlSession,
  timeoutSeconds: number,
): Promise<string[]> {
  const rows = await session.query<{ id: string }>(
    `UPDATE devices SET online = false, updated_at = now()
     WHERE online AND (last_seen IS NULL OR last_seen < now() - make_interval(secs => $1))
     RETURNING id`,
    [timeoutSeconds],
  );
  return rows.map((row) => row.id);
}
