import { EventEmitter } from 'node:events';
import {
  RolloutSpec,
  formatIssues,
  parseImageReference,
  type RolloutSpecInput,
  type RolloutState,
} from '@podfleet/shared';
import type { Logger } from 'pino';
import type { Database } from '../db/client.js';
import type { Prisma } from '../db/generated/client.js';
import type { DesiredSync } from '../desired/sync.js';
import { badRequest, conflict, notFound } from '../http/errors.js';
import { absorbRollout } from './absorb.js';
import { rolloutCandidates } from './candidates.js';
import { observeDevices } from './observations.js';
import { planRollout, type RolloutPlan } from './plan.js';
import {
  operate,
  tick,
  type DeviceChange,
  type OperatorAction,
  type RolloutDevice,
  type RolloutProgress,
  type TickResult,
} from './progress.js';
import { FINISHED, type RolloutDeviceStatus, type RolloutStatus } from './status.js';
import { readDevices, readStatus, type DeviceListQuery } from './status-query.js';

export interface EngineOptions {
  db: Database;
  sync: DesiredSync;
  log: Logger;
  /** How often every active rollout is looked at (device results also wake it). */
  tickMs?: number;
  now?: () => number;
}

export interface PlannedRollout {
  spec: RolloutSpec;
  targetImage: string;
  plan: RolloutPlan;
}

const ACTIVE: RolloutState[] = ['pending', 'running', 'paused', 'rolling_back'];
// Prisma's default (5 s) is too short for a 10,000-device rollout on a busy machine.
const TRANSACTION = { timeout: 60_000, maxWait: 60_000 };

/**
 * Drives rollouts. Its state is only what Postgres holds, so any controller can drive any rollout:
 * each pass claims rollouts one at a time with `FOR UPDATE SKIP LOCKED` (two controllers never
 * work on one at once), runs the pure `tick`, stores what changed, then lets desired-state sync
 * reissue the manifests of the devices it switched.
 */
export class RolloutEngine {
  /**
   * `happening` (rolloutId, line) for the live stream and the log; `ticked` (rolloutId) after each
   * tick stored for a rollout.
   */
  readonly events = new EventEmitter();
  private timer: NodeJS.Timeout | undefined;
  /** Passes run one after the other, in this process; other controllers are kept out by locks. */
  private chain: Promise<unknown> = Promise.resolve();
  private pokeQueued = false;
  private closed = false;

  constructor(private readonly options: EngineOptions) {
    this.events.setMaxListeners(0);
  }

  /** What `start` would do, with nothing written. */
  async plan(input: RolloutSpecInput): Promise<PlannedRollout> {
    const parsed = RolloutSpec.safeParse(input);
    if (!parsed.success) throw badRequest('invalid rollout spec', formatIssues(parsed.error));
    const spec = parsed.data;
    if (spec.strategy.policy !== undefined) {
      // The policy core (rollouts/policy/, decision 006) is not driven by the engine yet: a rollout
      // that asks for budgets or windows is refused rather than run without them.
      throw badRequest('invalid rollout spec', [
        'strategy.policy: not enforced by this controller yet (decision 006); leave it out',
      ]);
    }
    const prisma = this.options.db.prisma;
    let targetImage = spec.image;
    if (spec.revision !== undefined) {
      const revision = await prisma.serviceRevision.findUnique({
        where: { serviceName_revision: { serviceName: spec.service, revision: spec.revision } },
      });
      if (!revision) throw notFound(`service ${spec.service} revision ${spec.revision}`);
      targetImage = revision.image;
    }
    if (!(await prisma.service.findUnique({ where: { name: spec.service } })))
      throw notFound(`service ${spec.service}`);
    if (spec.overridePins.length > 0 && !parseImageReference(targetImage!)?.digest) {
      throw badRequest('overridePins needs an image by digest: a pin always names a digest', [
        'image: give registry/repo@sha256:… to roll out over pins',
      ]);
    }
    const candidates = await rolloutCandidates(prisma, spec);
    return { spec, targetImage: targetImage!, plan: planRollout(spec, targetImage!, candidates) };
  }

  /** Plans and stores a rollout; the next pass starts it. One active rollout per service. */
  async start(input: RolloutSpecInput, actor: string): Promise<RolloutStatus> {
    const planned = await this.plan(input);
    const { spec, targetImage, plan } = planned;
    if (plan.total === 0)
      throw conflict(`no device to roll ${spec.service} out to (${plan.excluded.length} excluded)`);
    const id = await this.options.db.prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(
        'SELECT pg_advisory_xact_lock(hashtext($1))',
        `rollout:${spec.service}`,
      );
      const active = await tx.rollout.findFirst({
        where: { service: spec.service, state: { in: ACTIVE } },
      });
      if (active)
        throw conflict(
          `rollout ${active.id} of ${spec.service} is ${active.state}; finish or abort it first`,
        );
      const rollout = await tx.rollout.create({
        data: {
          service: spec.service,
          spec: spec as unknown as Prisma.InputJsonValue,
          targetImage,
          batchCount: plan.batches.length,
          excluded: plan.excluded,
          createdBy: actor,
        },
      });
      // One INSERT … SELECT unnest(…): for 10,000 devices Prisma's createMany spends seconds of
      // CPU building and binding the statement.
      const rows = plan.batches.flatMap((batch) => batch.devices.map((d) => ({ ...d, batch })));
      await tx.$executeRawUnsafe(
        `INSERT INTO rollout_devices (rollout_id, device_id, batch, from_image, to_image, over_group_pin)
         SELECT $1::uuid, u.* FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::boolean[])
           AS u(device_id, batch, from_image, to_image, over_group_pin)`,
        rollout.id,
        rows.map((r) => r.id),
        rows.map((r) => r.batch.index),
        rows.map((r) => r.from),
        rows.map((r) => r.to),
        rows.map((r) => r.overGroupPin),
      );
      await tx.auditEntry.create({
        data: {
          actor,
          action: 'rollout.start',
          target: `rollout/${rollout.id}`,
          details: { service: spec.service, image: targetImage, devices: plan.total },
        },
      });
      return rollout.id;
    }, TRANSACTION);
    this.poke();
    return (await this.status(id))!;
  }

  async operate(id: string, action: OperatorAction, actor: string): Promise<RolloutStatus> {
    // Happenings go out after the commit: a stream never shows a step that was rolled back.
    const { manifestsChange, happenings } = await this.options.db.prisma.$transaction(
      async (tx) => {
        const locked = await tx.$queryRawUnsafe<{ id: string }[]>(
          'SELECT id FROM rollouts WHERE id = $1::uuid FOR UPDATE',
          id,
        );
        if (locked.length === 0) throw notFound(`rollout ${id}`);
        const { progress, devices } = await loadRollout(tx, id);
        let result: TickResult;
        try {
          result = operate(progress, devices, action, actor, this.now());
        } catch (error) {
          throw conflict((error as Error).message);
        }
        await store(tx, id, progress, result, this.now());
        await tx.auditEntry.create({
          data: { actor, action: `rollout.${action}`, target: `rollout/${id}`, details: {} },
        });
        return { manifestsChange: result.manifestsChange, happenings: result.happenings };
      },
      TRANSACTION,
    );
    this.emit(id, happenings);
    if (manifestsChange) await this.reissue(id);
    this.poke();
    return (await this.status(id))!;
  }

  async status(id: string): Promise<RolloutStatus | undefined> {
    return readStatus(this.options.db.prisma, id);
  }

  /** One page of a rollout's devices; undefined when there is no such rollout. */
  async devices(id: string, query: DeviceListQuery): Promise<RolloutDeviceStatus[] | undefined> {
    return readDevices(this.options.db.prisma, id, query);
  }

  /** Starts the periodic passes. */
  run(): void {
    this.timer = setInterval(() => this.poke(), this.options.tickMs ?? 1000);
    this.poke();
  }

  /** Runs a pass soon (device results arrived, an operator acted); many pokes, one pass. */
  poke(): void {
    if (this.closed || this.pokeQueued) return;
    this.pokeQueued = true;
    void this.chain
      .then(() => {
        this.pokeQueued = false;
        return this.closed ? 0 : this.pass();
      })
      .catch((error: unknown) => this.options.log.error({ err: error }, 'rollout pass failed'));
  }

  /** One pass over every active rollout, after any pass in progress; resolves with how many. */
  pass(): Promise<number> {
    const run = this.chain.then(() => this.passOnce());
    this.chain = run.catch(() => 0);
    return run;
  }

  private async passOnce(): Promise<number> {
    const seen: string[] = [];
    for (;;) {
      const claimed = await this.options.db.prisma.$transaction(async (tx) => {
        const rows = await tx.$queryRawUnsafe<{ id: string }[]>(
          `SELECT id FROM rollouts WHERE state::text = ANY($1::text[]) AND NOT (id = ANY($2::uuid[]))
             ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1`,
          ACTIVE,
          seen,
        );
        const id = rows[0]?.id;
        if (!id) return undefined;
        const { progress, devices, service, createdAt } = await loadRollout(tx, id);
        const watched = devices.filter(
          (d) =>
            d.state === 'updating' ||
            d.state === 'reverting' ||
            d.batch === progress.currentBatch ||
            d.batch === progress.currentBatch + 1,
        );
        const observations = await observeDevices(
          tx,
          watched.map((d) => d.id),
          service,
          createdAt,
        );
        const result = tick(progress, devices, observations, this.now());
        await store(tx, id, progress, result, this.now());
        if (result.progress.state === 'succeeded' && progress.state !== 'succeeded') {
          const row = await tx.rollout.findUniqueOrThrow({ where: { id } });
          await absorbRollout(tx, {
            id,
            service,
            targetImage: row.targetImage,
            spec: RolloutSpec.parse(row.spec),
          });
        }
        const unstamped = devices.some(
          (d) =>
            (d.state === 'updating' && d.targetGeneration === undefined) ||
            (d.state === 'reverting' && d.revertGeneration === undefined),
        );
        return {
          id,
          happenings: result.happenings,
          reissue:
            result.manifestsChange ||
            unstamped ||
            (result.progress.state === 'succeeded' && progress.state !== 'succeeded'),
        };
      }, TRANSACTION);
      if (!claimed) return seen.length;
      seen.push(claimed.id);
      // Whatever the tick stored (devices that succeeded say nothing), readers see it now.
      this.events.emit('ticked', claimed.id);
      this.emit(claimed.id, claimed.happenings);
      if (claimed.reissue) await this.reissue(claimed.id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.chain;
  }

  /** Recomputes manifests, then records which generation carries each device's switch. */
  private async reissue(id: string): Promise<void> {
    const prisma = this.options.db.prisma;
    const unstamped = await prisma.$queryRawUnsafe<{ device_id: string }[]>(
      `SELECT device_id FROM rollout_devices WHERE rollout_id = $1::uuid
         AND ((state = 'updating' AND target_generation IS NULL)
           OR (state = 'reverting' AND revert_generation IS NULL))`,
      id,
    );
    const result = await this.options.sync.recompute();
    // A controller killed between storing these devices' manifests and publishing them left them
    // stored and unpublished: this recompute finds nothing changed, so it publishes them again.
    const published = new Set(result?.publishedDevices);
    const missed = unstamped.map((row) => row.device_id).filter((device) => !published.has(device));
    if (missed.length > 0) await this.options.sync.republish(missed);
    await prisma.$executeRawUnsafe(
      `UPDATE rollout_devices rd SET target_generation = d.desired_generation, updated_at = now()
       FROM devices d WHERE rd.device_id = d.id AND rd.rollout_id = $1::uuid AND rd.state = 'updating' AND rd.target_generation IS NULL`,
      id,
    );
    await prisma.$executeRawUnsafe(
      `UPDATE rollout_devices rd SET revert_generation = d.desired_generation, updated_at = now()
       FROM devices d WHERE rd.device_id = d.id AND rd.rollout_id = $1::uuid AND rd.state = 'reverting' AND rd.revert_generation IS NULL`,
      id,
    );
  }

  private emit(id: string, happenings: string[]): void {
    for (const line of happenings) {
      this.options.log.info({ rollout: id }, line);
      this.events.emit('happening', id, line);
    }
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }
}

interface DeviceRow {
  id: string;
  batch: number;
  from: string;
  to: string;
  state: RolloutDevice['state'];
  reason: string | null;
  switchedAt: Date | string | null;
  targetGeneration: number | null;
  revertGeneration: number | null;
}

async function loadRollout(tx: Prisma.TransactionClient, id: string) {
  const row = await tx.rollout.findUniqueOrThrow({ where: { id } });
  // Plain SQL: every pass reads every device of the rollout, and Prisma's row mapping of 10,000
  // rows held the event loop (and every API request) for a long while.
  const rows = await tx.$queryRawUnsafe<DeviceRow[]>(
    `SELECT device_id AS id, batch, from_image AS "from", to_image AS "to", state::text AS state,
       reason, switched_at AS "switchedAt", target_generation AS "targetGeneration",
       revert_generation AS "revertGeneration"
     FROM rollout_devices WHERE rollout_id = $1::uuid ORDER BY batch, device_id`,
    id,
  );
  const spec = RolloutSpec.parse(row.spec);
  const progress: RolloutProgress = {
    state: row.state,
    strategy: spec.strategy,
    batchCount: row.batchCount,
    currentBatch: row.currentBatch,
    acceptedFailures: row.acceptedFailures,
    awaitingApproval: row.awaitingApproval,
  };
  if (row.batchStartedAt) progress.batchStartedAt = row.batchStartedAt.getTime();
  if (row.batchFinishedAt) progress.batchFinishedAt = row.batchFinishedAt.getTime();
  if (row.reason) progress.reason = row.reason;
  const devices: RolloutDevice[] = rows.map((d) => {
    const device: RolloutDevice = {
      id: d.id,
      batch: d.batch,
      from: d.from,
      to: d.to,
      state: d.state,
    };
    if (d.reason) device.reason = d.reason;
    if (d.switchedAt) device.switchedAt = new Date(d.switchedAt).getTime();
    if (d.targetGeneration !== null) device.targetGeneration = d.targetGeneration;
    if (d.revertGeneration !== null) device.revertGeneration = d.revertGeneration;
    return device;
  });
  return { progress, devices, service: row.service, createdAt: row.createdAt };
}

async function store(
  tx: Prisma.TransactionClient,
  id: string,
  before: RolloutProgress,
  result: TickResult,
  now: number,
): Promise<void> {
  const p = result.progress;
  const finished = FINISHED.includes(p.state) && !FINISHED.includes(before.state);
  await tx.rollout.update({
    where: { id },
    data: {
      state: p.state,
      reason: p.reason ?? null,
      currentBatch: p.currentBatch,
      batchStartedAt: p.batchStartedAt === undefined ? null : new Date(p.batchStartedAt),
      batchFinishedAt: p.batchFinishedAt === undefined ? null : new Date(p.batchFinishedAt),
      acceptedFailures: p.acceptedFailures,
      awaitingApproval: p.awaitingApproval,
      ...(finished ? { finishedAt: new Date(now) } : {}),
    },
  });
  if (result.changes.size === 0) return;
  const rows = [...result.changes.entries()];
  await tx.$executeRawUnsafe(
    `UPDATE rollout_devices rd SET
       state = COALESCE(u.state::rollout_device_state, rd.state),
       reason = CASE WHEN u.set_reason THEN u.reason ELSE rd.reason END,
       switched_at = COALESCE(u.switched_at, rd.switched_at),
       target_generation = CASE WHEN u.state = 'updating' THEN NULL ELSE rd.target_generation END,
       revert_generation = CASE WHEN u.state = 'reverting' THEN NULL ELSE rd.revert_generation END,
       updated_at = now()
     FROM unnest($2::text[], $3::text[], $4::boolean[], $5::text[], $6::timestamptz[]) AS u(device_id, state, set_reason, reason, switched_at)
     WHERE rd.rollout_id = $1::uuid AND rd.device_id = u.device_id`,
    id,
    rows.map(([device]) => device),
    rows.map(([, c]) => c.state ?? null),
    rows.map(([, c]) => 'reason' in c),
    rows.map(([, c]) => (c as DeviceChange).reason ?? null),
    rows.map(([, c]) => (c.switchedAt === undefined ? null : new Date(c.switchedAt).toISOString())),
  );
}
