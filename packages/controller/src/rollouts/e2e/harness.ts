import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pino, type Logger } from 'pino';
import { topics, type RolloutState } from '@podfleet/shared';
import { ensureAdminToken } from '../../auth/bootstrap.js';
import { runCliCaptured, type CliRun } from '../../cli/testing.js';
import type { PrismaClient } from '../../db/client.js';
import { createScratchDatabase, type ScratchDatabase } from '../../db/testing.js';
import { apiRoutes } from '../../http/routes.js';
import { readServeConfig } from '../../serve/config.js';
import { startController, type RunningController } from '../../serve/serve.js';
import type { RolloutStatus } from '../status.js';

/**
 * End-to-end rollouts on the machine's real Postgres and Mosquitto: a scratch database, a real
 * controller (`startController`, as `podfleet serve` runs it), and an operator driving it through
 * the `podfleet` CLI. The simulated devices live in the test (they come from the agent package).
 */

export const MOSQUITTO = process.env.PODFLEET_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

/** Cleanups run newest first; each one runs even when an earlier one failed. */
export class Cleanups {
  private readonly steps: (() => Promise<unknown>)[] = [];

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      await step().catch((error: unknown) => errors.push(error));
    }
    if (errors.length > 0) throw new AggregateError(errors, `${errors.length} cleanup(s) failed`);
  }
}

/**
 * Polls `check` until it returns something other than undefined; after `ms` fails naming what it
 * waited for and, from `detail`, where things stood.
 */
export async function waitFor<T>(
  what: string,
  ms: number,
  check: () => Promise<T | undefined>,
  detail?: () => Promise<string> | string,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await check();
    if (found !== undefined) return found;
    if (Date.now() > deadline) {
      const where = detail ? `; last seen: ${await detail()}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${where}`);
    }
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `work`, or a failure naming `what` after `ms` (for a command that follows something live). */
export async function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One line about a rollout, for timeout messages and logs. */
export function describeRollout(status: RolloutStatus | undefined): string {
  if (!status) return 'no such rollout';
  const counts = Object.entries(status.counts)
    .filter(([, n]) => n > 0)
    .map(([state, n]) => `${state} ${n}`)
    .join(', ');
  return `${status.state} at batch ${status.currentBatch}/${status.batches.length} (${counts})${status.reason ? `: ${status.reason}` : ''}`;
}

/** A unique, valid device-id prefix and label value: no two runs share devices or retained topics. */
export function uniquePrefix(name: string): string {
  return `e2e-${name}-${randomBytes(3).toString('hex')}`;
}

/** PREFIX-0000…: the ids `podfleet-agent sim --prefix PREFIX -n N` gives its devices. */
export function simIds(prefix: string, n: number): string[] {
  const width = Math.max(4, String(n - 1).length);
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(width, '0')}`);
}

export interface BrokerIdentity {
  PODFLEET_CONTROLLER_ID: string;
  PODFLEET_SHARE_GROUP: string;
  PODFLEET_MQTT_SESSION_EXPIRY: string;
}

/**
 * The controller's own client id and share group on the shared Mosquitto, so that it gets every
 * message of its devices and no other test's controller takes a share of them. A restarted
 * controller reuses the identity (and so its broker session); `expiry` bounds how long the broker
 * keeps that session once the test is over.
 */
export function brokerIdentity(expirySeconds = 5): BrokerIdentity {
  const id = `pf-e2e-${randomBytes(6).toString('hex')}`;
  return {
    PODFLEET_CONTROLLER_ID: `podfleet-controller-${id}`,
    PODFLEET_SHARE_GROUP: id,
    PODFLEET_MQTT_SESSION_EXPIRY: String(expirySeconds),
  };
}

/** What a controller of one scenario runs on: its database, data directory and broker identity. */
export interface ControllerSite {
  scratch: ScratchDatabase;
  dataDir: string;
  broker: BrokerIdentity;
  /** The environment `podfleet serve` reads, for a child process or `readServeConfig`. */
  env: Record<string, string>;
}

export async function controllerSite(
  cleanups: Cleanups,
  expirySeconds = 5,
): Promise<ControllerSite> {
  const scratch = await createScratchDatabase();
  cleanups.add(() => scratch.drop());
  const dataDir = await mkdtemp(join(tmpdir(), 'pf-e2e-'));
  cleanups.add(() => rm(dataDir, { recursive: true, force: true }));
  const broker = brokerIdentity(expirySeconds);
  const env = {
    DATABASE_URL: scratch.url,
    MQTT_URL: MOSQUITTO,
    PORT: '0',
    PODFLEET_DATA: dataDir,
    LOG_LEVEL: 'info',
    // The simulated fleet's images live in no registry: tags are rolled out as given.
    PODFLEET_RESOLVE_TAGS: 'off',
    ...broker,
  };
  return { scratch, dataDir, broker, env };
}

/** An operator at a controller: `podfleet ARGS --url … --token …`, run in this process. */
export interface Operator {
  cli(...argv: string[]): Promise<CliRun>;
}

export function operatorAt(url: string, token: string): Operator {
  return { cli: (...argv) => runCliCaptured([...argv, '--url', url, '--token', token]) };
}

export interface E2eController extends Operator {
  controller: RunningController;
  /** The bootstrap admin token, as `podfleet serve` makes it on first start. */
  token: string;
  /** The controller's public key file: what `podfleet-agent sim --key` trusts. */
  publicKeyFile: string;
}

/** A controller as `podfleet serve` starts it (all routes, the engine on its default tick). */
export async function startE2eController(
  site: ControllerSite,
  log: Logger = pino({ level: 'silent' }),
): Promise<E2eController> {
  const controller = await startController(readServeConfig(site.env), apiRoutes, log);
  const issued = await ensureAdminToken(controller.db.prisma);
  const tokenFile = join(site.dataDir, 'admin-token');
  if (issued) await writeFile(tokenFile, `${issued}\n`, { mode: 0o600 });
  const token = issued ?? (await readFile(tokenFile, 'utf8')).trim();
  return {
    controller,
    token,
    ...operatorAt(controller.url, token),
    publicKeyFile: join(site.dataDir, 'controller-public-key.pem'),
  };
}

/** `podfleet serve` in a child process, which a test can kill -9. */
export interface ChildController extends Operator {
  url: string;
  token: string;
  /** What it printed: its own lines and its log (pino JSON, one object a line). */
  lines: string[];
  /** SIGKILL: no drain, no goodbye to the broker or the database; resolves once it is gone. */
  kill(): Promise<void>;
}

const PODFLEET_BIN = fileURLToPath(new URL('../../../bin/podfleet.js', import.meta.url));

/** Starts `node bin/podfleet.js serve` (the built dist/) on the site; killed at cleanup. */
export async function spawnController(
  site: ControllerSite,
  cleanups: Cleanups,
): Promise<ChildController> {
  const child = spawn(process.execPath, [PODFLEET_BIN, 'serve'], {
    env: { ...process.env, ...site.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = async () => {
    if (running()) child.kill('SIGKILL');
    await exited;
  };
  cleanups.add(kill);
  const url = await waitFor(
    'podfleet serve to listen',
    60_000,
    async () => {
      if (!running()) throw new Error(`podfleet serve exited: ${stderr.join('\n')}`);
      return lines
        .map((line) => /^podfleet controller on (http:\/\/\S+) /.exec(line)?.[1])
        .find(Boolean);
    },
    () => stderr.slice(-5).join(' | ') || lines.slice(-3).join(' | '),
    50,
  );
  const token = (await readFile(join(site.dataDir, 'admin-token'), 'utf8')).trim();
  return { url, token, lines, kill, ...operatorAt(url, token) };
}

/** The rollout engine's happenings in a controller's log lines (`batch 2 started: 12 devices`). */
export function happenings(lines: readonly string[]): string[] {
  const found: string[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as { rollout?: unknown; msg?: unknown };
    if (typeof entry.rollout === 'string' && typeof entry.msg === 'string') found.push(entry.msg);
  }
  return found;
}

/** A logger that keeps its lines, for `happenings` of an in-process controller. */
export function capturingLogger(lines: string[]): Logger {
  return pino({ level: 'info' }, { write: (line: string) => void lines.push(line.trimEnd()) });
}

/** Runs a CLI command that must succeed, failing with what it printed otherwise. */
export async function mustRun(run: Promise<CliRun>, what: string): Promise<CliRun> {
  const result = await run;
  if (result.code !== 0) {
    throw new Error(
      `${what}: exit ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result;
}

export interface FleetSetup {
  ids: string[];
  /** Every device carries `fleet=<label>`; group `edge` selects it. */
  label: string;
  image: string;
  /** ready.settle of the spec (the simulator may override it). */
  settle?: string;
}

/**
 * What an operator does before a rollout, through the CLI: registers the devices with labels
 * (`devices add`, one POST /v1/devices each), creates a group selecting them, applies the service
 * spec and assigns it to the group.
 */
export async function provisionFleet(
  e: Operator,
  setup: FleetSetup,
  specDir: string,
): Promise<void> {
  // `devices add` takes many ids; a few commands in flight at once keep registration short.
  const chunks: string[][] = [];
  for (let i = 0; i < setup.ids.length; i += 50) chunks.push(setup.ids.slice(i, i + 50));
  for (let i = 0; i < chunks.length; i += 4) {
    await Promise.all(
      chunks
        .slice(i, i + 4)
        .map((chunk) =>
          mustRun(
            e.cli('devices', 'add', ...chunk, '--labels', `fleet=${setup.label}`, '--json'),
            'devices add',
          ),
        ),
    );
  }
  await mustRun(
    e.cli('groups', 'create', 'edge', '--selector', `fleet=${setup.label}`, '--priority', '1'),
    'groups create',
  );
  const spec = join(specDir, 'web.yaml');
  await writeFile(
    spec,
    `name: web\nimage: ${setup.image}\nready: { timeout: 20s, settle: ${setup.settle ?? '1s'} }\n`,
  );
  await mustRun(e.cli('services', 'apply', '-f', spec), 'services apply');
  await mustRun(e.cli('assign', 'edge', 'web'), 'assign');
}

/** One device as the controller knows it, from its last state report. */
export interface DeviceSeen {
  id: string;
  online: boolean;
  desiredGeneration: number;
  appliedGeneration: number;
  /** The image of service `web` in its last state report, and whether it was ready. */
  image: string | undefined;
  ready: boolean;
}

export async function devicesSeen(
  prisma: PrismaClient,
  ids: readonly string[],
): Promise<Map<string, DeviceSeen>> {
  const rows = await prisma.device.findMany({
    where: { id: { in: [...ids] } },
    select: {
      id: true,
      online: true,
      desiredGeneration: true,
      appliedGeneration: true,
      lastState: true,
    },
  });
  const seen = new Map<string, DeviceSeen>();
  for (const row of rows) {
    const services =
      (row.lastState as { services?: { name: string; image?: string; ready?: boolean }[] } | null)
        ?.services ?? [];
    const web = services.find((s) => s.name === 'web');
    seen.set(row.id, {
      id: row.id,
      online: row.online,
      desiredGeneration: row.desiredGeneration,
      appliedGeneration: row.appliedGeneration,
      image: web?.image,
      ready: web?.ready === true,
    });
  }
  return seen;
}

/** A device that applied its newest manifest and runs `image`, ready. */
export const runs = (device: DeviceSeen | undefined, image: string): boolean =>
  device !== undefined &&
  device.desiredGeneration > 0 &&
  device.appliedGeneration === device.desiredGeneration &&
  device.image === image &&
  device.ready;

/** Waits until every device in `ids` runs `image`, as its state report says. */
export async function waitUntilAllRun(
  prisma: PrismaClient,
  ids: readonly string[],
  image: string,
  ms: number,
): Promise<void> {
  let behind: string[] = [];
  await waitFor(
    `${ids.length} devices to report ${image} applied and ready`,
    ms,
    async () => {
      const seen = await devicesSeen(prisma, ids);
      behind = ids.filter((id) => !runs(seen.get(id), image));
      return behind.length === 0 ? true : undefined;
    },
    () => `${behind.length} not yet, e.g. ${behind.slice(0, 3).join(', ')}`,
    250,
  );
}

/** Waits for a rollout to reach one of `states`. */
export async function waitForRollout(
  controller: RunningController,
  id: string,
  states: readonly RolloutState[],
  ms: number,
): Promise<RolloutStatus> {
  let last: RolloutStatus | undefined;
  return waitFor(
    `rollout ${id} to be ${states.join(' or ')}`,
    ms,
    async () => {
      last = await controller.rollouts.status(id);
      return last && states.includes(last.state) ? last : undefined;
    },
    () => describeRollout(last),
    200,
  );
}

/** Clears what the devices left retained on the broker (manifest, state, liveness). */
export async function clearRetained(ids: readonly string[]): Promise<void> {
  const client = await mqtt.connectAsync(MOSQUITTO, {
    protocolVersion: 5,
    clientId: `pf-e2e-clear-${randomBytes(4).toString('hex')}`,
    reconnectPeriod: 0,
  });
  try {
    const cleared = ids.flatMap((id) => [topics.desired(id), topics.state(id), topics.online(id)]);
    for (let i = 0; i < cleared.length; i += 500) {
      await Promise.all(
        cleared
          .slice(i, i + 500)
          .map((topic) => client.publishAsync(topic, '', { qos: 1, retain: true })),
      );
    }
  } finally {
    await client.endAsync();
  }
}
