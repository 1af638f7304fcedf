import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freePort,
  startManagedMosquitto,
  type ManagedMosquitto,
} from '../broker-access/testing.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';

const bin = fileURLToPath(new URL('../../bin/podfleet.js', import.meta.url));
const LOGIN = { username: 'podfleet-controller', password: 'broker-pw-4a7f' };
const DB_PASSWORD = 'db-pw-91c2';

interface Served {
  code: number | null;
  output: string;
  dataDir: string;
}

/**
 * The installed `podfleet serve` with every log line on (LOG_LEVEL=debug), stopped with SIGTERM
 * once it says where it listens (or when it exits on its own); stdout and stderr as one text.
 */
async function serve(env: Record<string, string>): Promise<Served> {
  const dataDir = mkdtempSync(join(tmpdir(), 'pf-serve-output-'));
  const id = `podfleet-controller-test-${randomUUID()}`;
  const child = spawn(process.execPath, [bin, 'serve'], {
    env: {
      ...process.env,
      PORT: '0',
      PODFLEET_DATA: dataDir,
      LOG_LEVEL: 'debug',
      PODFLEET_CONTROLLER_ID: id,
      PODFLEET_SHARE_GROUP: id,
      PODFLEET_MQTT_SESSION_EXPIRY: '5',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  // 'close', not 'exit': the process may end before its last output has been read.
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const listening = new Promise<void>((resolve) => {
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('podfleet controller on')) resolve();
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
  });
  const timeout = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await Promise.race([listening, exited]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const code = await exited;
  clearTimeout(timeout);
  return { code, output, dataDir };
}

describe('podfleet serve prints no secret', () => {
  let scratch: ScratchDatabase;
  let broker: ManagedMosquitto;
  let databaseUrl: string;
  beforeAll(async () => {
    // The controller logs in on the controllers' listener, as with deploy/mosquitto.
    [scratch, broker] = await Promise.all([
      createScratchDatabase(),
      startManagedMosquitto(undefined, { controllers: { [LOGIN.username]: LOGIN.password } }),
    ]);
    // Postgres trusts local connections here: the password is sent and ignored.
    const url = new URL(scratch.url);
    url.password = DB_PASSWORD;
    databaseUrl = url.href;
  });
  afterAll(async () => {
    await broker?.stop();
    await scratch?.drop();
  });

  it('says where the admin token is and which broker it uses, without a password or the token', async () => {
    const served = await serve({
      DATABASE_URL: databaseUrl,
      MQTT_URL: `mqtt://${LOGIN.username}:${LOGIN.password}@127.0.0.1:${broker.controllerPort}`,
    });
    try {
      const tokenFile = join(served.dataDir, 'admin-token');
      const token = (await readFile(tokenFile, 'utf8')).trim();
      expect(token).toMatch(/^pft_/);
      expect(served.output).toContain(`admin token written to ${tokenFile}`);
      expect(served.output).toContain(
        `broker mqtt://${LOGIN.username}:***@127.0.0.1:${broker.controllerPort}\n`,
      );
      expect(served.output).toContain('"msg":"broker connected"');
      expect(served.output).toContain('stopping: storing what was received');
      for (const secret of [token, LOGIN.password, DB_PASSWORD]) {
        expect(served.output).not.toContain(secret);
      }
    } finally {
      await rm(served.dataDir, { recursive: true, force: true });
    }
  }, 90_000);

  it('names the broker it cannot reach without its password', async () => {
    const port = await freePort();
    const served = await serve({
      DATABASE_URL: databaseUrl,
      MQTT_URL: `mqtt://${LOGIN.username}:${LOGIN.password}@127.0.0.1:${port}`,
    });
    try {
      expect(served.code).toBe(1);
      expect(served.output).toContain(
        `podfleet: cannot connect to mqtt://${LOGIN.username}:***@127.0.0.1:${port}: `,
      );
      expect(served.output).not.toContain(LOGIN.password);
      expect(served.output).not.toContain(DB_PASSWORD);
    } finally {
      await rm(served.dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
