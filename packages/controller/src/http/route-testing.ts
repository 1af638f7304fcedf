import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import type { Role } from '../auth/roles.js';
import { issueToken } from '../auth/tokens.js';
import { openDatabase, type Database, type PrismaClient } from '../db/client.js';
import { createScratchDatabase } from '../db/testing.js';
import type { DesiredState } from '../desired/index.js';
import { buildApp, type Fleet, type RoutePlugin } from './app.js';
import { apiRoutes, type ApiOptions } from './routes.js';

/** A Fleet that remembers what it was told, and explains what a test sets up. */
export class RecordingFleet implements Fleet {
  readonly reasons: string[] = [];
  readonly explanations = new Map<string, DesiredState>();

  changed(reason: string): void {
    this.reasons.push(reason);
  }

  async explain(deviceId: string): Promise<DesiredState | undefined> {
    return this.explanations.get(deviceId);
  }

  readonly forgotten: string[] = [];

  async forget(deviceId: string): Promise<void> {
    this.forgotten.push(deviceId);
  }

  /** The reasons heard since the last call. */
  take(): string[] {
    return this.reasons.splice(0);
  }
}

export type StoreKind = 'postgres' | 'embedded';

export interface ApiHarness {
  app: FastifyInstance;
  db: Database;
  prisma: PrismaClient;
  /** The scratch Postgres database's URL; undefined on the embedded store. */
  databaseUrl: string | undefined;
  fleet: RecordingFleet;
  /** A live token per role, named `ci-<role>`. */
  tokens: Record<Role, string>;
  /** Injects a request as `role` (no Authorization header when undefined). */
  call(
    role: Role | undefined,
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    body?: unknown,
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export interface HarnessOptions extends ApiOptions {
  store?: StoreKind;
  /** Route plugins instead of the whole API. */
  routes?: RoutePlugin[];
}

/**
 * The real API on a fresh, migrated store: a scratch Postgres database (the server of
 * PODFLEET_TEST_DATABASE_URL) or an embedded store in a temporary PODFLEET_DATA.
 */
export async function openApiHarness(options: HarnessOptions = {}): Promise<ApiHarness> {
  const { db, databaseUrl, dispose } = await openStore(options.store ?? 'postgres');
  await db.migrate();
  const tokens = {} as Record<Role, string>;
  for (const role of ['viewer', 'operator', 'admin'] as const) {
    const { token, hash } = issueToken();
    await db.prisma.apiToken.create({ data: { name: `ci-${role}`, role, tokenHash: hash } });
    tokens[role] = token;
  }
  const fleet = new RecordingFleet();
  const app = await buildApp(
    { db, fleet, log: pino({ level: process.env.PODFLEET_TEST_LOG ?? 'silent' }) },
    options.routes ?? apiRoutes(options),
  );
  return {
    app,
    db,
    prisma: db.prisma,
    databaseUrl,
    fleet,
    tokens,
    call: (role, method, url, body) =>
      app.inject({
        method,
        url,
        headers: role ? { authorization: `Bearer ${tokens[role]}` } : {},
        ...(body === undefined ? {} : { payload: body as object }),
      }),
    async close() {
      await app.close();
      await dispose();
    },
  };
}

async function openStore(
  kind: StoreKind,
): Promise<{ db: Database; databaseUrl: string | undefined; dispose(): Promise<void> }> {
  if (kind === 'embedded') {
    const dir = await mkdtemp(join(tmpdir(), 'podfleet-api-'));
    const db = await openDatabase({ PODFLEET_DATA: dir });
    return {
      db,
      databaseUrl: undefined,
      dispose: () => db.close().then(() => rm(dir, { recursive: true, force: true })),
    };
  }
  const scratch = await createScratchDatabase();
  const db = await openDatabase({ DATABASE_URL: scratch.url });
  return { db, databaseUrl: scratch.url, dispose: () => db.close().then(() => scratch.drop()) };
}
