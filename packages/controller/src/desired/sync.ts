import {
  manifestJson,
  ServiceSpec,
  signManifests,
  type DeviceManifest,
  type SigningKey,
  type UnsignedManifest,
} from '@podfleet/shared';
import type { Logger } from 'pino';
import type { Database } from '../db/client.js';
import type { Fleet } from '../http/app.js';
import type { RolloutOverrides } from './image-rule.js';
import { buildManifest, contentHash } from './manifest.js';
import { resolveDesiredState, resolveFleet, type DesiredState } from './resolve.js';
import {
  loadFleet,
  storedManifests,
  type Db,
  type StoredDevice,
  type StoredManifest,
} from './sources.js';

/** Hands a signed manifest to the devices (MQTT: retained, QoS 1, on its desired topic). */
export interface ManifestPublisher {
  publish(manifest: DeviceManifest): Promise<void>;
  /** Clears a device's retained manifest (the device was deleted). */
  clear(deviceId: string): Promise<void>;
}

export interface SyncOptions {
  db: Database;
  publisher: ManifestPublisher;
  key: SigningKey;
  log: Logger;
  /** What rollouts give devices now (the rollout engine's), read inside the recompute. */
  rollouts?: (db: Db) => Promise<RolloutOverrides>;
  /** Changes within this window are recomputed together. */
  debounceMs?: number;
  now?: () => Date;
}

export interface SyncResult {
  devices: number;
  published: number;
  conflicts: number;
  /** The devices whose new manifest this run stored and published. */
  publishedDevices: string[];
}

// Manifests in flight at once. Waiting for every PUBACK of a slice before sending the next cost
// a broker round trip per slice; 10,000 in flight is what the plain-MQTT limit sends at once.
const PUBLISH_WINDOW = 10_000;

// A recompute of 10,000 devices (resolve, hash, sign what changed) is ~0.1–0.5 s of CPU: it lets
// other work (API requests, ingest) run between slices of this many devices.
const YIELD_EVERY = 500;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

// pg_advisory_xact_lock key: one desired-state computation at a time across controllers.
const DESIRED_LOCK = 0x70660001;

/**
 * Keeps every device's signed manifest equal to what groups, assignments, pins and rollouts say.
 * A change only asks for a recompute; recomputes are debounced and run one at a time, each over
 * the whole fleet inside one transaction holding an advisory lock, so two controllers never hand
 * out one generation twice. A device's generation grows only when its manifest's content changes,
 * which is decided by the content hash stored beside the manifest: only the devices whose content
 * changed are signed, stored and published.
 */
export class DesiredSync implements Fleet {
  private pending: NodeJS.Timeout | undefined;
  private running: Promise<SyncResult | undefined> = Promise.resolve(undefined);
  private reasons: string[] = [];
  private closed = false;

  constructor(private readonly options: SyncOptions) {}

  changed(reason: string): void {
    if (this.closed) return;
    this.reasons.push(reason);
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      void this.recompute().catch((error: unknown) =>
        this.options.log.error({ err: error }, 'recomputing desired state failed'),
      );
    }, this.options.debounceMs ?? 50);
  }

  /** Recomputes now (after any recompute in progress) and publishes what changed. */
  recompute(): Promise<SyncResult | undefined> {
    const reasons = this.reasons.splice(0);
    this.running = this.running.catch(() => undefined).then(() => this.recomputeOnce(reasons));
    return this.running;
  }

  /** Waits for scheduled and running recomputes. */
  async settled(): Promise<void> {
    while (this.pending || this.reasons.length > 0) {
      if (this.pending) {
        clearTimeout(this.pending);
        this.pending = undefined;
      }
      await this.recompute();
    }
    await this.running;
  }

  async explain(deviceId: string): Promise<DesiredState | undefined> {
    const prisma = this.options.db.prisma;
    const fleet = await loadFleet(prisma, await this.rolloutOverrides(prisma));
    const device = fleet.devices.find((d) => d.id === deviceId);
    return device ? resolveDesiredState({ ...fleet, device }) : undefined;
  }

  async forget(deviceId: string): Promise<void> {
    await this.options.publisher.clear(deviceId);
  }

  /** Publishes every stored manifest again: at start, and after the broker lost retained ones. */
  async republishAll(): Promise<number> {
    return this.republish();
  }

  /**
   * Publishes the stored manifests of `ids` (all devices when absent) again, retained: what a
   * controller stored but died before publishing reaches the devices. A device that has the
   * generation already takes it as no news.
   */
  async republish(ids?: readonly string[]): Promise<number> {
    const devices = await this.options.db.prisma.device.findMany({
      where: {
        desiredManifest: { not: { equals: null } },
        ...(ids ? { id: { in: [...ids] } } : {}),
      },
      select: { desiredManifest: true },
    });
    const manifests = devices.flatMap((d) =>
      d.desiredManifest ? [d.desiredManifest as unknown as DeviceManifest] : [],
    );
    for (let start = 0; start < manifests.length; start += PUBLISH_WINDOW) {
      await Promise.all(
        manifests
          .slice(start, start + PUBLISH_WINDOW)
          .map((m) => this.options.publisher.publish(m)),
      );
    }
    return manifests.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.settled();
  }

  private async rolloutOverrides(db: Db): Promise<RolloutOverrides> {
    return this.options.rollouts ? this.options.rollouts(db) : new Map();
  }

  private async recomputeOnce(reasons: string[]): Promise<SyncResult> {
    const { db, key, log } = this.options;
    const now = this.options.now?.() ?? new Date();
    // Where a recompute's time goes (ms since it began), for the log line: read, signed, stored.
    const began = performance.now();
    const ms: Record<string, number> = {};
    const mark = (step: string) => (ms[step] = Math.round(performance.now() - began));
    const { changed, devices, conflicts } = await db.prisma.$transaction(
      async (tx) => {
        await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${DESIRED_LOCK})`);
        const fleet = await loadFleet(tx, await this.rolloutOverrides(tx));
        mark('read');
        const states = new Map<string, DesiredState>();
        for (let start = 0; start < fleet.devices.length; start += YIELD_EVERY) {
          const slice = fleet.devices.slice(start, start + YIELD_EVERY);
          for (const [id, state] of resolveFleet(slice, fleet.groups, fleet)) states.set(id, state);
          await yieldToEventLoop();
        }
        // Stored manifests are read only where the hash cannot decide alone: a conflict keeps the
        // service the device had; a manifest stored before hashes existed is hashed once.
        const previous = await storedManifests(
          tx,
          fleet.devices
            .filter(
              (d) =>
                d.desiredGeneration > 0 &&
                (d.desiredHash === null || states.get(d.id)!.conflicts.length > 0),
            )
            .map((d) => d.id),
        );
        const unsigned: UnsignedManifest[] = [];
        const hashes: string[] = [];
        const rehashed: [string, string][] = [];
        let conflicts = 0;
        let done = 0;
        for (const device of fleet.devices) {
          if (++done % YIELD_EVERY === 0) await yieldToEventLoop();
          const state = states.get(device.id)!;
          conflicts += state.conflicts.length;
          const next = nextManifestFor(device, state, previous.get(device.id), now);
          if (next.manifest) {
            unsigned.push(next.manifest);
            hashes.push(next.hash);
          } else if (device.desiredHash === null && previous.has(device.id)) {
            rehashed.push([device.id, next.hash]);
          }
        }
        // Signed in libuv's threadpool: ingest and the API go on meanwhile.
        const changed = await signManifests(unsigned, key.privateKeyPem, key.endorsements);
        mark('signed');
        if (changed.length > 0) {
          // One JSON text of the rows, made of the manifests' signed texts: pg escapes every
          // element of a text array in JavaScript, which for 10,000 manifests took about a second.
          const rows = changed.map(
            (m, i) =>
              `{"id":${JSON.stringify(m.device)},"hash":${JSON.stringify(hashes[i])},"manifest":${manifestJson(m)}}`,
          );
          await tx.$executeRawUnsafe(
            `UPDATE devices AS d SET desired_generation = (u.manifest->>'generation')::int,
               desired_manifest = u.manifest, desired_hash = u.hash, updated_at = now()
             FROM jsonb_to_recordset($1::jsonb) AS u(id text, hash text, manifest jsonb)
             WHERE d.id = u.id`,
            `[${rows.join(',')}]`,
          );
        }
        if (rehashed.length > 0) {
          await tx.$executeRawUnsafe(
            `UPDATE devices AS d SET desired_hash = u.hash
             FROM unnest($1::text[], $2::text[]) AS u(id, hash) WHERE d.id = u.id`,
            rehashed.map(([id]) => id),
            rehashed.map(([, hash]) => hash),
          );
        }
        mark('stored');
        return { changed, devices: fleet.devices.length, conflicts };
      },
      { timeout: 120_000, maxWait: 120_000 },
    );
    // After commit: a manifest is published only once it is the stored truth. Many in flight at
    // once: one PUBACK round trip per manifest would make 10,000 devices take seconds.
    for (let start = 0; start < changed.length; start += PUBLISH_WINDOW) {
      await Promise.all(
        changed.slice(start, start + PUBLISH_WINDOW).map((m) => this.options.publisher.publish(m)),
      );
    }
    mark('published');
    if (changed.length > 0 || conflicts > 0) {
      log.info(
        { reasons, devices, published: changed.length, conflicts, ms },
        'desired state recomputed',
      );
    }
    return {
      devices,
      published: changed.length,
      conflicts,
      publishedDevices: changed.map((m) => m.device),
    };
  }
}

/**
 * The next manifest of one device (undefined when its content did not change) and the hash of its
 * content. A service the rules leave undecided (a conflict) keeps the spec it had, so that a
 * conflict never removes a running service; the conflict is reported by `explain`. The generation
 * continues from the larger of the stored and the applied one (a database restored from a backup
 * must not hand out a generation the device already saw). `previous` is needed only for conflicts
 * and for a stored manifest without a hash.
 */
function nextManifestFor(
  device: StoredDevice,
  state: DesiredState,
  previous: StoredManifest | undefined,
  now: Date,
): { hash: string; manifest?: UnsignedManifest } {
  const services = [...state.services];
  for (const conflict of state.conflicts) {
    const kept = previous?.services.find(
      (s) => (s as { name?: unknown } | null)?.name === conflict.service,
    );
    if (kept) services.push(ServiceSpec.parse(kept));
  }
  const hash = contentHash(device.id, services);
  const storedHash =
    device.desiredHash ??
    (previous
      ? contentHash(previous.device, previous.services as ServiceSpec[])
      : device.appliedGeneration > 0
        ? contentHash(device.id, [])
        : undefined);
  if (storedHash === hash) return { hash };
  const generation = Math.max(
    previous?.generation ?? 0,
    device.desiredGeneration,
    device.appliedGeneration,
  );
  return { hash, manifest: buildManifest(device.id, services, generation + 1, now) };
}
