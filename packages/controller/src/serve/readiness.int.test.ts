import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { startManagedMosquitto } from '../broker-access/testing.js';
import { adminDatabaseUrl } from '../db/testing.js';
import { Cleanups, controllerSite, spawnController, waitFor } from '../rollouts/e2e/harness.js';

const LOGIN = { username: 'podfleet-controller', password: 'broker-pw-3c9e' };
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

interface Probe {
  status: number;
  body: { ready?: boolean; ok?: boolean; checks?: Record<string, string> };
}

async function probe(url: string): Promise<Probe> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Probe['body'] };
}

/** Runs SQL on the Postgres server's maintenance database (what an outage is made with). */
async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminDatabaseUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe('/readyz checks the database and the broker; /healthz stays liveness', () => {
  it('answers 200 when both are up and 503 naming the one that is down', async () => {
    const broker = await startManagedMosquitto(undefined, {
      controllers: { [LOGIN.username]: LOGIN.password },
    });
    cleanups.add(() => broker.stop());
    const site = await controllerSite(cleanups);
    site.env.MQTT_URL = `mqtt://${LOGIN.username}:${LOGIN.password}@127.0.0.1:${broker.controllerPort}`;
    const database = new URL(site.scratch.url).pathname.slice(1);
    // Registered after the scratch database's drop: cleanups run newest first.
    cleanups.add(() => admin(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS true`));
    const controller = await spawnController(site, cleanups);
    const readyz = `${controller.url}/readyz`;
    const healthz = `${controller.url}/healthz`;

    expect(await probe(readyz)).toEqual({
      status: 200,
      body: { ready: true, checks: { database: 'ok', broker: 'ok' } },
    });

    // The database refuses the controller: its connections are ended and no new one is let in.
    await admin(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS false`);
    await admin(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}'`,
    );
    const dbDown = await waitFor('/readyz to say the database is down', 15_000, async () => {
      const seen = await probe(readyz);
      return seen.status === 503 ? seen : undefined;
    });
    expect(dbDown.body.ready).toBe(false);
    expect(dbDown.body.checks).toMatchObject({
      database: 'down',
      broker: 'ok',
    });
    expect(await probe(healthz)).toEqual({ status: 200, body: { ok: true } });

    await admin(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS true`);
    await waitFor('/readyz to recover', 15_000, async () =>
      (await probe(readyz)).status === 200 ? true : undefined,
    );

    await broker.stop();
    const brokerDown = await waitFor('/readyz to say the broker is down', 15_000, async () => {
      const seen = await probe(readyz);
      return seen.status === 503 ? seen : undefined;
    });
    expect(brokerDown.body.checks).toEqual({ database: 'ok', broker: 'down' });
    expect(await probe(healthz)).toEqual({ status: 200, body: { ok: true } });
  }, 120_000);
});
