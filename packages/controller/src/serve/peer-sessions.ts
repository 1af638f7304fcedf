import pg from 'pg';
import type { Logger } from 'pino';
import type { IClientOptions } from 'mqtt';
import type { DeviceIngest } from '../ingest/device-ingest.js';
import { connectBroker } from '../mqtt/connect.js';

const APPLICATION = 'podfleet:';
/** Postgres keeps 63 bytes of application_name. */
const LONGEST_ID = 63 - APPLICATION.length;
/** The first key of the two-key advisory locks: their own space, apart from other podfleet locks. */
const LOCK_SPACE = "hashtext('podfleet-controller')";

export interface PeerSessionOptions {
  databaseUrl: string;
  /** The broker URL the controller connects with (its credentials included). */
  brokerUrl: string;
  /** TLS options of the controller's own connection (a private CA, a client certificate). */
  brokerOptions?: IClientOptions;
  controllerId: string;
  ingest: DeviceIngest;
  log: Logger;
  everyMs?: number;
  /** A taken-over session is ended once no message came through it for this long. */
  quietMs?: number;
}

/**
 * Mosquitto 2.0 keeps giving a shared subscription's turns to a member whose process died while
 * its session lives on, and those messages wait in that session until the same client id returns
 * (docs/decisions/004). So a controller holds, for as long as it runs, a Postgres advisory lock
 * named after its MQTT client id, on a connection that carries the id as application_name, and
 * watches its peers. When a controller it has seen is gone (no connection, lock free), it takes
 * the lock and the dead one's broker session: what waited there goes through this controller's
 * ingest, and the session ends, so that the broker stops giving it turns. A controller coming
 * back waits for its lock, so the two never hold one session at once.
 */
export class PeerSessions {
  private readonly seen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private watching: Promise<void> = Promise.resolve();
  private closed = false;
  private lost = false;

  private constructor(
    private lock: pg.Client,
    private readonly options: PeerSessionOptions,
  ) {
    this.onLost(lock);
  }

  /**
   * Takes this controller's own lock, waiting while a peer drains its old session. Call before
   * connecting to the broker.
   */
  static async start(options: PeerSessionOptions): Promise<PeerSessions> {
    if (Buffer.byteLength(options.controllerId) > LONGEST_ID) {
      options.log.warn(
        `PODFLEET_CONTROLLER_ID is longer than ${LONGEST_ID} bytes: peers cannot take over its broker session if it dies`,
      );
    }
    return new PeerSessions(await ownLock(options), options);
  }

  /** Looks at the peers every `everyMs`. */
  watch(): void {
    const every = this.options.everyMs ?? 2000;
    this.timer = setInterval(() => {
      this.watching = this.watching
        .then(() => this.look())
        .catch((error: unknown) => this.options.log.warn({ err: error }, 'peer check failed'));
    }, every);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.watching;
    await this.lock.end();
  }

  private async look(): Promise<void> {
    if (this.closed) return;
    if (this.lost) {
      // Meanwhile a peer may have taken this controller's session; MQTT.js's reconnect takes it
      // back, and what either acknowledged is in its journal (004).
      this.lock = await ownLock(this.options);
      this.lost = false;
      this.onLost(this.lock);
      this.options.log.info('controller lock taken again');
    }
    const { rows } = await this.lock.query<{ name: string }>(
      `SELECT application_name AS name FROM pg_stat_activity
       WHERE datname = current_database() AND starts_with(application_name, $1)`,
      [APPLICATION],
    );
    const live = new Set(rows.map((row) => row.name.slice(APPLICATION.length)));
    for (const id of live) if (id !== this.options.controllerId) this.seen.add(id);
    for (const id of this.seen) {
      if (live.has(id) || this.closed) continue;
      const { rows: taken } = await this.lock.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_lock(${LOCK_SPACE}, hashtext($1)) AS locked`,
        [id],
      );
      if (!taken[0]?.locked) continue;
      try {
        await this.takeOver(id);
        this.seen.delete(id);
      } finally {
        await this.lock.query(`SELECT pg_advisory_unlock(${LOCK_SPACE}, hashtext($1))`, [id]);
      }
    }
  }

  private onLost(lock: pg.Client): void {
    lock.on('error', (error) => {
      this.lost = true;
      this.options.log.error(
        { err: error },
        'controller lock connection lost; peers may take over',
      );
    });
  }

  /**
   * Resumes the dead controller's session, stops the broker giving it turns, lets what waited
   * there run through ingest, and ends the session.
   */
  private async takeOver(id: string): Promise<void> {
    const quietMs = this.options.quietMs ?? 1000;
    let messages = 0;
    let lastAt = Date.now();
    const { client } = await connectBroker(
      this.options.brokerUrl,
      {
        ...this.options.brokerOptions,
        clientId: id,
        clean: false,
        reconnectPeriod: 0,
        // Expiry 0: the session ends with this connection.
        properties: { sessionExpiryInterval: 0, receiveMaximum: 65_535 },
      },
      (taken) => {
        this.options.ingest.listen(taken);
        taken.on('message', () => {
          messages++;
          lastAt = Date.now();
        });
      },
    );
    try {
      await client.unsubscribeAsync(this.options.ingest.topicFilters(true));
      lastAt = Date.now();
      // Quiet, and not because ingest holds the reads: nothing is left in the session.
      while (Date.now() - lastAt < quietMs || this.options.ingest.holdingReads) {
        await new Promise((resolve) => setTimeout(resolve, quietMs / 4));
      }
    } finally {
      await client.endAsync();
    }
    this.options.log.info(
      { peer: id, messages },
      'took over the broker session of a controller that went away',
    );
  }
}

/** A connection that names the controller and holds its lock (waiting while a peer holds it). */
async function ownLock(options: PeerSessionOptions): Promise<pg.Client> {
  const lock = new pg.Client({
    connectionString: options.databaseUrl,
    application_name: `${APPLICATION}${options.controllerId}`,
  });
  await lock.connect();
  try {
    await lock.query(`SELECT pg_advisory_lock(${LOCK_SPACE}, hashtext($1))`, [
      options.controllerId,
    ]);
    return lock;
  } catch (error) {
    await lock.end();
    throw error;
  }
}
