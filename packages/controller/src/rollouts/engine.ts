import { EventEmitter } from 'node:events';
import {
  RolloutSpec,
  formatIssues,
  storedRolloutSpec,
  type FailureReason,
  parseImageReference,
  type RolloutSpecInput,
  type RolloutState,
} from '@podfleet/shared';
import type { Logger } from 'pino';
import type { Database } from '../db/client.js';
import type { Prisma } from '../db/generated/client.js';
import type { DesiredSync } from '../desired/sync.js';
import { HttpError, badRequest, conflict, notFound } from '../http/errors.js';
import { absorbRollout } from './absorb.js';
import { rolloutCandidates } from './candidates.js';
import { ImageResolveError } from './image-digest.js';
import { observeDevices } from './observations.js';
import { emptyPlanProblem } from './empty-plan.js';
import { canaryProblem, planRollout, type RolloutPlan } from './plan.js';
import { batchForecast } from './policy/forecast.js';
import { effectiveSettings } from './policy/settings.js';
import {
  operate,
  tick,
  type OperatorAction,
  type RolloutDevice,
  type RolloutProgress,
  type TickResult,
} from './progress.js';
import { FINISHED, type RolloutDeviceStatus, type RolloutStatus } from './status.js';
import { readDevices, readStatus, type DeviceListQuery } from './status-query.js';
import { unknownService } from '../services/unknown-service.js';

export interface EngineOptions {
  db: Database;
  sync: DesiredSync;
  log: Logger;
  /** How often every active rollout is looked at (device results also wake it). */
  tickMs?: number;
  now?: () => number;
  /**
   * Resolves an image tag to the image by digest (image-digest.ts) when a rollout is planned, so
   * every device gets the same bits; without it a tag is rolled out as given.
   */
  resolveImage?: (image: string) => Promise<string>;
}

export interface PlannedRollout {
  spec: RolloutSpec;
  targetImage: string;
  plan: RolloutPlan;
  /** Per batch, what holds it on its own: approval, bake, maintenance windows (for the plan). */
  forecast: string[][];
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
      throw await unknownService(prisma, spec.service);
    const resolve = this.options.resolveImage;
    if (resolve && !parseImageReference(targetImage!)?.digest) {
      // Once, before anything is written: a tag that does not resolve changes no device.
      try {
        targetImage = await resolve(targetImage!);
      } catch (error) {
        if (!(error instanceof ImageResolveError)) throw error;
        throw new HttpError(422, `cannot resolve ${error.image} to a digest: ${error.reason}`, [
          `${spec.image === undefined ? 'revision' : 'image'}: ${error.message}`,
        ]);
      }
    }
    if (spec.overridePins.length > 0 && !parseImageReference(targetImage!)?.digest) {
      throw badRequest('overridePins needs an image by digest: a pin always names a digest', [
        'image: give registry/repo@sha256:… to roll out over pins',
      ]);
    }
    const candidates = await rolloutCandidates(prisma, spec);
    const plan = planRollout(spec, targetImage!, candidates);
    const canary = canaryProblem(spec.strategy.canary, plan);
    if (canary) throw badRequest('invalid rollout spec', [canary]);
    const settings = effectiveSettings(spec.strategy, plan.batches);
    if (settings.problems.length > 0) throw badRequest('invalid rollout policy', settings.problems);
    const labels = new Map(candidates.map((c) => [c.id, c.labels]));
    const forecast = plan.batches.map((batch) =>
      batchForecast(
        batch.index,
        batch.devices.map((d) => labels.get(d.id) ?? {}),
        settings,
        this.now(),
      ),
    );
    return { spec, targetImage: targetImage!, plan, forecast };
  }

  /** Plans and stores a rollout; the next pass starts it. One active rollout per service. */
  async start(input: RolloutSpecInput, actor: string): Promise<RolloutStatus> {
    const planned = await this.plan(input);
    const { spec, targetImage, plan } = planned;
    const empty = emptyPlanProblem(spec.service, plan);
    if (empty) throw conflict(empty);
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
        const approved = result.progress.approvedBatches.filter(
          (batch) => !progress.approvedBatches.includes(batch),
        );
        const accepted = [...result.changes].filter(([, change]) => change.accepted).length;
        await tx.auditEntry.create({
          data: {
            actor,
            action: `rollout.${action}`,
            target: `rollout/${id}`,
            details: {
              ...(approved.length > 0 ? { approvedAfterBatch: approved[0] } : {}),
              ...(accepted > 0 ? { acceptedFailures: accepted } : {}),
            },
          },
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
        const watched = progress.strategy.policy?.disruptionBudget
          ? devices // a group's standing counts every device of it, online or not
          : devices.filter((d) => isWatched(d, progress));
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
            spec: storedRolloutSpec(row.spec),
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

/**
 * The devices a pass must observe without a disruption budget: every one that is switched, may
 * start (the current batch, and earlier ones carried over), or is watched through the bake
 * between batches. Finished devices and later batches are left alone.
 */
function isWatched(device: RolloutDevice, progress: RolloutProgress): boolean {
  switch (device.state) {
    case 'updating':
    case 'reverting':
    case 'deferred':
      return true;
    case 'pending':
      return device.batch <= progress.currentBatch + 1;
    case 'succeeded':
      return device.batch === progress.currentBatch - 1;
    default:
      return false;
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
  hold: string | null;
  readySeenAt: Date | string | null;
  restartsAtReady: number | null;
  activeSinceAtReady: Date | string | null;
  reportAtReady: Date | string | null;
  failureReason: FailureReason | null;
  failureUnit: string | null;
  failureJournal: string[] | null;
  accepted: boolean;
}

const time = (value: Date | string) => new Date(value).getTime();

async function loadRollout(tx: Prisma.TransactionClient, id: string) {
  const row = await tx.rollout.findUniqueOrThrow({ where: { id } });
  // Plain SQL: every pass reads every device of the rollout, and Prisma's row mapping of 10,000
  // rows held the event loop (and every API request) for a long while.
  const rows = await tx.$queryRawUnsafe<DeviceRow[]>(
    `SELECT device_id AS id, batch, from_image AS "from", to_image AS "to", state::text AS state,
       reason, switched_at AS "switchedAt", target_generation AS "targetGeneration",
       revert_generation AS "revertGeneration", hold, ready_seen_at AS "readySeenAt",
       restarts_at_ready AS "restartsAtReady", active_since_at_ready AS "activeSinceAtReady",
       report_at_ready AS "reportAtReady",
       failure_reason AS "failureReason", failure_unit AS "failureUnit",
       failure_journal AS "failureJournal", accepted_failure AS accepted
     FROM rollout_devices WHERE rollout_id = $1::uuid ORDER BY batch, device_id`,
    id,
  );
  const spec = storedRolloutSpec(row.spec);
  const progress: RolloutProgress = {
    state: row.state,
    strategy: spec.strategy,
    batchCount: row.batchCount,
    currentBatch: row.currentBatch,
    awaitingApproval: row.awaitingApproval,
    approvedBatches: row.approvedBatches,
    waiting: row.waiting,
  };
  if (row.batchStartedAt) progress.batchStartedAt = row.batchStartedAt.getTime();
  if (row.previousBatchDoneAt) progress.previousBatchDoneAt = row.previousBatchDoneAt.getTime();
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
    if (d.switchedAt) device.switchedAt = time(d.switchedAt);
    if (d.targetGeneration !== null) device.targetGeneration = d.targetGeneration;
    if (d.revertGeneration !== null) device.revertGeneration = d.revertGeneration;
    if (d.hold !== null) device.hold = d.hold;
    if (d.readySeenAt) {
      device.bake = { readySeenAt: time(d.readySeenAt) };
      if (d.restartsAtReady !== null) device.bake.restartsAtReady = d.restartsAtReady;
      if (d.activeSinceAtReady) device.bake.activeSinceAtReady = time(d.activeSinceAtReady);
      if (d.reportAtReady) device.bake.reportAtReady = time(d.reportAtReady);
    }
    if (d.failureReason !== null) {
      device.failure = { reason: d.failureReason, journal: d.failureJournal ?? [] };
      if (d.failureUnit !== null) device.failure.unit = d.failureUnit;
    }
    if (d.accepted) device.accepted = true;
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
  const date = (at: number | undefined) => (at === undefined ? null : new Date(at));
  await tx.rollout.update({
    where: { id },
    data: {
      state: p.state,
      reason: p.reason ?? null,
      currentBatch: p.currentBatch,
      batchStartedAt: date(p.batchStartedAt),
      previousBatchDoneAt: date(p.previousBatchDoneAt),
      awaitingApproval: p.awaitingApproval,
      approvedBatches: p.approvedBatches,
      waiting: p.waiting,
      ...(finished ? { finishedAt: new Date(now) } : {}),
    },
  });
  if (result.changes.size === 0) return;
  const rows = [...result.changes.entries()];
  const iso = (at: number | undefined) => (at === undefined ? null : new Date(at).toISOString());
  // Each field is written only when the change names it (`set_*`): a change of state alone keeps
  // the reason, the bake and the failure stored before. Journals go as JSON: Postgres has no
  // array of arrays of different lengths.
  await tx.$executeRawUnsafe(
    `UPDATE rollout_devices rd SET
       state = COALESCE(u.state::rollout_device_state, rd.state),
       reason = CASE WHEN u.set_reason THEN u.reason ELSE rd.reason END,
       switched_at = COALESCE(u.switched_at, rd.switched_at),
       target_generation = CASE WHEN u.state = 'updating' THEN NULL ELSE rd.target_generation END,
       revert_generation = CASE WHEN u.state = 'reverting' THEN NULL ELSE rd.revert_generation END,
       hold = CASE WHEN u.set_hold THEN u.hold ELSE rd.hold END,
       ready_seen_at = CASE WHEN u.set_bake THEN u.ready_seen_at ELSE rd.ready_seen_at END,
       restarts_at_ready = CASE WHEN u.set_bake THEN u.restarts_at_ready ELSE rd.restarts_at_ready END,
       active_since_at_ready = CASE WHEN u.set_bake THEN u.active_since_at_ready ELSE rd.active_since_at_ready END,
       report_at_ready = CASE WHEN u.set_bake THEN u.report_at_ready ELSE rd.report_at_ready END,
       failure_reason = CASE WHEN u.set_failure THEN u.failure_reason ELSE rd.failure_reason END,
       failure_unit = CASE WHEN u.set_failure THEN u.failure_unit ELSE rd.failure_unit END,
       failure_journal = CASE WHEN u.set_failure
         THEN ARRAY(SELECT jsonb_array_elements_text(COALESCE(u.failure_journal, '[]')::jsonb))
         ELSE rd.failure_journal END,
       accepted_failure = COALESCE(u.accepted, rd.accepted_failure),
       updated_at = now()
     FROM unnest($2::text[], $3::text[], $4::boolean[], $5::text[], $6::timestamptz[],
                 $7::boolean[], $8::text[], $9::boolean[], $10::timestamptz[], $11::int[], $12::timestamptz[],
                 $13::boolean[], $14::text[], $15::text[], $16::text[], $17::timestamptz[], $18::boolean[])
       AS u(device_id, state, set_reason, reason, switched_at, set_hold, hold, set_bake, ready_seen_at,
            restarts_at_ready, active_since_at_ready, set_failure, failure_reason, failure_unit, failure_journal,
            report_at_ready, accepted)
     WHERE rd.rollout_id = $1::uuid AND rd.device_id = u.device_id`,
    id,
    rows.map(([device]) => device),
    rows.map(([, c]) => c.state ?? null),
    rows.map(([, c]) => 'reason' in c),
    rows.map(([, c]) => c.reason ?? null),
    rows.map(([, c]) => iso(c.switchedAt)),
    rows.map(([, c]) => 'hold' in c),
    rows.map(([, c]) => c.hold ?? null),
    rows.map(([, c]) => 'bake' in c),
    rows.map(([, c]) => iso(c.bake?.readySeenAt)),
    rows.map(([, c]) => c.bake?.restartsAtReady ?? null),
    rows.map(([, c]) => iso(c.bake?.activeSinceAtReady)),
    rows.map(([, c]) => 'failure' in c),
    rows.map(([, c]) => c.failure?.reason ?? null),
    rows.map(([, c]) => c.failure?.unit ?? null),
    rows.map(([, c]) => (c.failure ? JSON.stringify(c.failure.journal) : null)),
    rows.map(([, c]) => iso(c.bake?.reportAtReady)),
    rows.map(([, c]) => c.accepted ?? null),
  );
}
