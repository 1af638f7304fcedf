import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../broker-access/testing.js';
import { runCliCaptured } from '../cli/testing.js';
import { Cleanups, mustRun, waitFor } from '../rollouts/e2e/harness.js';

/**
 * `podfleet serve` as systemd or a terminal runs it, on the embedded default (store and broker
 * in the process): what a fatal start-up error and SIGTERM do to the process, its store lock
 * and the clients attached to it.
 */

const bin = fileURLToPath(new URL('../../bin/podfleet.js', import.meta.url));
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

interface Served {
  child: ChildProcess;
  /** stdout and stderr, line by line, as they come. */
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code once the process is gone and its output read. */
  exited: Promise<number | null>;
}

/** `podfleet ARGS` in a child process, its output a pipe; killed at cleanup. */
function podfleet(argv: string[], env: Record<string, string> = {}): Served {
  const child = spawn(process.execPath, [bin, ...argv], {
    env: { ...process.env, LOG_LEVEL: 'warn', PODFLEET_RESOLVE_TAGS: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => stdout.push(line));
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  cleanups.add(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, stdout, stderr, exited };
}

const serve = (env: Record<string, string>) => podfleet(['serve'], env);

/** The URL the controller says it listens on, once it says so. */
async function listening(served: Served): Promise<string> {
  return waitFor(
    'podfleet serve to listen',
    60_000,
    async () => {
      if (served.child.exitCode !== null) throw new Error(served.stderr.join('\n'));
      return served.stdout
        .map((line) => /^podfleet controller on (http:\/\/\S+) /.exec(line)?.[1])
        .find(Boolean);
    },
    () => served.stderr.join(' | '),
    50,
  );
}

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pf-lifecycle-'));
  cleanups.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function occupied(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.add(() => new Promise((resolve) => server.close(resolve)));
  return server;
}

/** Exit code and time from spawn (and from its error line) to exit. */
async function timedExit(served: Served, began: number) {
  const code = await served.exited;
  const exitedAt = Date.now();
  return { code, ms: exitedAt - began };
}

describe('podfleet serve: fatal start-up errors', () => {
  it('exits 1 at once, with one line naming the port, when the embedded broker’s port is taken', async () => {
    const port = await freePort();
    await occupied(port);
    const began = Date.now();
    const served = serve({
      PODFLEET_DATA: await dataDir(),
      PORT: '0',
      PODFLEET_MQTT_PORT: String(port),
    });
    const { code, ms } = await timedExit(served, began);
    expect(code).toBe(1);
    expect(served.stderr).toEqual([
      `podfleet: embedded broker: 127.0.0.1:${port} is in use (set PODFLEET_MQTT_PORT, or MQTT_URL for a broker of your own)`,
    ]);
    // Node and the CLI load in about a second on this machine; the failure itself is immediate.
    expect(ms).toBeLessThan(3_000);
  }, 30_000);

  it('exits 1 with one line naming the port when the HTTP port is taken', async () => {
    const port = await freePort();
    await occupied(port);
    const served = serve({
      PODFLEET_DATA: await dataDir(),
      PORT: String(port),
      PODFLEET_MQTT_PORT: String(await freePort()),
    });
    const code = await served.exited;
    expect(code).toBe(1);
    expect(served.stderr).toEqual([
      `podfleet: HTTP: 127.0.0.1:${port} is in use (set PORT or --port)`,
    ]);
  }, 60_000);
});

describe('podfleet serve: SIGTERM with clients attached', () => {
  it('ends the streams and exits within 5 s; the next serve takes the store; `rollout watch` reconnects to it', async () => {
    const data = await dataDir();
    const env = {
      PODFLEET_DATA: data,
      PORT: String(await freePort()),
      PODFLEET_MQTT_PORT: String(await freePort()),
    };
    const first = serve(env);
    const url = await listening(first);
    const token = (await readFile(join(data, 'admin-token'), 'utf8')).trim();
    const cli = (...argv: string[]) => runCliCaptured([...argv, '--url', url, '--token', token]);

    // Devices that never connect: the rollout's canary waits for them as long as it runs.
    await mustRun(cli('devices', 'add', 'lc-1', 'lc-2', '--labels', 'site=lc'), 'devices add');
    await mustRun(cli('groups', 'create', 'lc', '--selector', 'site=lc'), 'groups create');
    const spec = join(data, 'web.yaml');
    await writeFile(spec, 'name: web\nimage: registry.example/web:1\n');
    await mustRun(cli('services', 'apply', '-f', spec), 'services apply');
    await mustRun(cli('assign', 'lc', 'web'), 'assign');
    const started = await mustRun(
      cli('rollout', 'start', 'web', 'registry.example/web:2', '--group', 'lc', '--canary', '1', '--json'), // prettier-ignore
      'rollout start',
    );
    const { id } = JSON.parse(started.stdout) as { id: string };

    // Attached: `rollout watch` (its output a pipe) and a dashboard's stream.
    const watch = podfleet(['rollout', 'watch', id, '--url', url, '--token', token]);
    const stream = await fetch(`${url}/v1/rollouts/${id}/stream`, {
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    });
    const streamEnded = stream.text().then(
      () => 'ended',
      () => 'ended',
    );
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const stopAt = Date.now();
    first.child.kill('SIGTERM');
    const { code, ms } = await timedExit(first, stopAt);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(5_000);
    expect(await streamEnded).toBe('ended');

    // Same data directory, same ports: the store's lock and the broker's port were released.
    const second = serve(env);
    expect(await listening(second)).toBe(url);
    await waitFor(
      'the watch to reconnect',
      15_000,
      async () => watch.stderr.find((line) => line.includes('reconnected')),
      () => watch.stderr.join(' | '),
    );
    await mustRun(cli('rollout', 'abort', id), 'rollout abort');
    expect(await watch.exited).toBe(1);
    expect(watch.stderr).toEqual([
      expect.stringMatching(
        new RegExp(`^podfleet: rollout ${id}: stream lost \\(.+\\); reconnecting$`),
      ),
      `podfleet: rollout ${id}: reconnected; watching again`,
      expect.stringMatching(new RegExp(`^podfleet: rollout ${id} aborted`)),
    ]);
    // A line per change, from before the stop and after the restart; the hold on offline
    // devices shows from the start.
    expect(watch.stdout[0]).toMatch(/^running \(canary\): 0\/2 succeeded.*; waiting: /);
    expect(watch.stdout).toContainEqual(expect.stringMatching(/^aborted: /));
  }, 120_000);
});
