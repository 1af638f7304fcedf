import type { DeviceEvent, OnlineStatus, StateReport } from '@podfleet/shared';
import type { SqlSession } from '../db/session.js';

/** What one batch of device messages writes. */
export interface IngestBatch {
  states: StateReport[];
  events: DeviceEvent[];
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
 * Writes a batch in one transaction with one statement per kind (`unnest` of parallel arrays), so
 * that ingest costs a few round trips per batch, not one per message. Replaying a batch changes
 * nothing: events are keyed by their id, and a state report older than the stored one is ignored.
 */
export async function storeBatch(session: SqlSession, batch: IngestBatch): Promise<IngestCounts> {
  return session.transaction(async (tx) => {
    const states = await storeStates(
      tx,
      latestPerDevice(
        batch.states,
        (s) => s.device,
        (s) => Date.parse(s.reportedAt),
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
    const known = await knownDevices(tx, [
      ...batch.states.map((s) => s.device),
      ...batch.events.map((e) => e.device),
      ...batch.online.map((o) => o.device),
    ]);
    const unknownDevices =
      batch.states.filter((s) => !known.has(s.device)).length +
      batch.events.filter((e) => !known.has(e.device)).length +
      batch.online.filter((o) => !known.has(o.device)).length;
    return { states, events, online, unknownDevices };
  });
}

async function storeStates(tx: SqlSession, states: StateReport[]): Promise<number> {
  if (states.length === 0) return 0;
  const rows = await tx.query<{ id: string }>(
    `UPDATE devices AS d SET
       last_state = u.state, applied_generation = u.generation, agent_version = u.agent,
       podman_version = u.podman, systemd_version = u.systemd, arch = u.arch,
       unit_style = u.unit_style::unit_style, online = true,
       online_since = CASE WHEN d.online AND d.online_since IS NOT NULL THEN d.online_since ELSE u.at END,
       last_seen = GREATEST(d.last_seen, u.at), updated_at = now()
     FROM unnest($1::text[], $2::jsonb[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
       AS u(id, state, generation, agent, podman, systemd, arch, unit_style, at)
     WHERE d.id = u.id
       AND (d.last_state IS NULL OR (d.last_state->>'reportedAt')::timestamptz <= u.at)
     RETURNING d.id`,
    [
      states.map((s) => s.device),
      states.map((s) => JSON.stringify(s)),
      states.map((s) => s.generation),
      states.map((s) => s.agent.version),
      states.map((s) => s.host.podman),
      states.map((s) => s.host.systemd),
      states.map((s) => s.host.arch),
      states.map((s) => s.host.unitStyle),
      states.map((s) => s.reportedAt),
    ],
  );
  return rows.length;
}

async function storeEvents(tx: SqlSession, events: DeviceEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  // Joined with devices: an event of an unknown device is dropped instead of failing the batch.
  const rows = await tx.query<{ id: string }>(
    `INSERT INTO device_events (id, device_id, type, at, payload)
     SELECT u.id, u.device, u.type, u.at, u.payload
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[]) AS u(id, device, type, at, payload)
     JOIN devices d ON d.id = u.device
     ON CONFLICT (id) DO NOTHING
     RETURNING id`,
    [
      events.map((e) => e.id),
      events.map((e) => e.device),
      events.map((e) => e.type),
      events.map((e) => e.at),
      events.map((e) => JSON.stringify(e)),
    ],
  );
  return rows.length;
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
