import type { FastifyRequest } from 'fastify';
import { callerOf } from '../auth/plugin.js';
import { Prisma, type PrismaClient } from '../db/client.js';
import { conflict } from '../http/errors.js';

export type Transaction = Prisma.TransactionClient;

/** One audit_log row: who did what to which thing. */
export interface AuditRecord {
  /** `group.create`, `pin.delete`, … */
  action: string;
  /** `group/edge`, `device/pi-17`, … */
  target: string;
  /** The request's meaningful fields; never a token, a token hash or a password. */
  details?: Prisma.InputJsonObject;
}

export interface Change<T> {
  result: T;
  /** Undefined when the request changed nothing (an unchanged spec applied again). */
  audit: AuditRecord | undefined;
  /** Set when the change can alter a device's manifest: the reason Fleet.changed hears. */
  fleet?: string;
}

/** Puts back, after a rollback, what a change did outside the database (a file, a signal). */
export type Compensation = (prisma: PrismaClient) => Promise<void>;

const compensations = new WeakMap<Transaction, Compensation[]>();

/**
 * Runs `undo` if commitChange's transaction `tx` rolls back, whatever made it roll back (this
 * step's throw, a later step's, the audit row, the commit itself): for the few changes that also
 * write outside the database, like the broker's password file, which must end up as the committed
 * rows say. Compensations run after the rollback, newest first, on a connection of their own.
 */
export function onRollback(tx: Transaction, undo: Compensation): void {
  const registered = compensations.get(tx);
  if (!registered) throw new Error('onRollback: the transaction is not one of commitChange');
  registered.push(undo);
}

// PGlite has one connection, so a transaction may wait for another; Prisma's 2 s default is short.
const TRANSACTION = { maxWait: 10_000, timeout: 20_000 };

/** Prisma's codes for what a concurrent change can cause between a route's check and its write. */
const RACES = new Set(['P2002', 'P2003', 'P2025']);

/**
 * Runs an operator's change and writes its audit row in the same transaction, so that there is
 * never a change without its row nor a row without its change; then, after the commit, tells the
 * fleet when manifests may have changed. The actor is the caller's token name unless given.
 * Routes check first and answer 404/409 naming the thing; a unique, foreign-key or missing-row
 * error that still reaches the store means another change came in between: 409, retry.
 */
export async function commitChange<T>(
  request: FastifyRequest,
  work: (tx: Transaction) => Promise<Change<T>>,
  actor: string = callerOf(request).name,
): Promise<T> {
  const { deps } = request.server;
  const undo: Compensation[] = [];
  const change = await deps.db.prisma
    .$transaction(async (tx) => {
      compensations.set(tx, undo);
      const done = await work(tx);
      if (done.audit) {
        const { action, target, details = {} } = done.audit;
        await tx.auditEntry.create({ data: { actor, action, target, details } });
      }
      return done;
    }, TRANSACTION)
    .catch(async (error: unknown) => {
      for (const step of undo.reverse()) {
        await step(deps.db.prisma).catch((failure: unknown) => {
          request.log.error({ err: failure }, 'undoing a rolled-back change failed');
        });
      }
      if (error instanceof Prisma.PrismaClientKnownRequestError && RACES.has(error.code)) {
        throw conflict('a concurrent change came first; retry');
      }
      throw error;
    });
  if (change.fleet !== undefined) {
    try {
      deps.fleet.changed(change.fleet);
    } catch (error) {
      // The change is committed; the sync recomputes from the database on its next run anyway.
      request.log.error({ err: error, reason: change.fleet }, 'fleet.changed failed');
    }
  }
  return change.result;
}
