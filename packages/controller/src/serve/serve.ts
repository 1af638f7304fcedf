import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { openDatabase, type Database } from '../db/client.js';
import { DesiredSync } from '../desired/sync.js';
import { dashboardPage } from '../dashboard/plugin.js';
import { brokerAccessFromEnv } from '../broker-access/config.js';
import { brokerCredentialIssuer } from '../broker-access/issuer.js';
import { brokerTlsOptions } from '../broker-access/tls-options.js';
import { buildApp, type RoutePlugin } from '../http/app.js';
import type { ApiOptions } from '../http/routes.js';
import { controllerKeyIssuer } from '../keys/controller-key-issuer.js';
import { resignManifests } from '../keys/resign.js';
import { DeviceIngest } from '../ingest/device-ingest.js';
import { markSilentDevicesOffline } from '../ingest/store.js';
import { loadSigningKey } from '../keys/signing-key.js';
import { connectBroker, controllerSessionOptions, type BrokerSession } from '../mqtt/connect.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../mqtt/embedded-broker.js';
import { mqttManifestPublisher } from '../mqtt/manifest-publisher.js';
import { commandRoutes } from '../commands/routes.js';
import { DeviceCommands } from '../commands/device-commands.js';
import { RolloutEngine } from '../rollouts/engine.js';
import { loadRegistryAccess, resolveImageDigest } from '../rollouts/image-digest.js';
import { loadRolloutOverrides } from '../rollouts/overrides.js';
import { rolloutRoutes } from '../rollouts/routes.js';
import type { ServeConfig } from './config.js';
import { PeerSessions } from './peer-sessions.js';
import { readinessPage } from './readiness.js';
import { redactUrl } from './redact-url.js';
import { sessionRunner } from './sessions.js';
import { fleetShareGroup, leaveFormerShareGroups } from './share-group.js';

export interface RunningController {
  /** http://HOST:PORT */
  url: string;
  /** The broker this controller connects to (with the embedded one, also the devices'). */
  mqttUrl: string;
  publicKeyPem: string;
  db: Database;
  app: FastifyInstance;
  sync: DesiredSync;
  rollouts: RolloutEngine;
  ingest: DeviceIngest;
  log: Logger;
  /** Stops taking requests, stores everything received, then closes. */
  close(): Promise<void>;
}

/**
 * `podfleet serve`: migrations, the broker (MQTT_URL, or the embedded one), ingest (replaying its
 * journal first), desired-state sync (republishing every stored manifest), the HTTP API, and the
 * offline sweeper. Returns once it listens.
 */
export async function startController(
  config: ServeConfig,
  /**
   * The API's route plugins; as a function (`apiRoutes`), they get the credential issuers that
   * enrollment needs: the controller key, and broker accounts when the broker's password file is
   * configured (PODFLEET_BROKER_PASSWORD_FILE).
   */
  routes: RoutePlugin[] | ((options: ApiOptions) => RoutePlugin[]),
  log?: Logger,
): Promise<RunningController> {
  const logger = log ?? pino({ level: config.LOG_LEVEL });
  mkdirSync(config.PODFLEET_DATA, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.splice(0).reverse()) {
      await step().catch((error: unknown) => logger.warn({ err: error }, 'shutdown step failed'));
    }
  };
  try {
    // The embedded broker first: its port is the start-up error an operator meets most, and the
    // store takes seconds to open on first use.
    let embedded: EmbeddedBroker | undefined;
    let mqttUrl = config.MQTT_URL;
    if (!mqttUrl) {
      embedded = await startEmbeddedBroker({
        host: config.PODFLEET_MQTT_HOST,
        port: config.PODFLEET_MQTT_PORT,
      }).catch((error: NodeJS.ErrnoException) => {
        throw new Error(
          error.code === 'EADDRINUSE'
            ? `embedded broker: ${config.PODFLEET_MQTT_HOST}:${config.PODFLEET_MQTT_PORT} is in use (set PODFLEET_MQTT_PORT, or MQTT_URL for a broker of your own)`
            : `embedded broker: ${error.message}`,
        );
      });
      cleanups.push(() => embedded!.close());
      mqttUrl = embedded.url;
    }
    const db = await openDatabase({
      DATABASE_URL: config.DATABASE_URL,
      PODFLEET_DATA: config.PODFLEET_DATA,
    });
    cleanups.push(() => db.close());
    const migrated = await db.migrate();
    logger.info(
      { database: db.location, kind: db.kind, applied: migrated.applied },
      'database ready',
    );

    const shareGroup = await fleetShareGroup(db.prisma, config.PODFLEET_SHARE_GROUP);

    const withSession = sessionRunner(db, config.DATABASE_URL, (error) =>
      logger.warn({ err: error }, 'idle database connection lost'),
    );
    cleanups.push(() => withSession.close());
    const ingest = new DeviceIngest({
      journalDir: join(config.PODFLEET_DATA, 'ingest-journal'),
      withSession: withSession.run,
      log: logger,
      shareGroup,
    });
    // Runs after the broker connection ends (cleanups go newest first): nothing arrives unjournaled.
    cleanups.push(() => ingest.close());
    // A private CA or a client certificate for mqtts:// (docs/security.md); empty otherwise.
    const tls = brokerTlsOptions(config);
    // Registries a rollout's tag is resolved against (PODFLEET_REGISTRY_*), unless turned off.
    const registries =
      config.PODFLEET_RESOLVE_TAGS === 'registry' ? loadRegistryAccess(config) : undefined;
    // Device broker accounts: the password file written from the database before anything
    // connects (what changed while the controller was away, e.g. a revocation, takes effect now).
    const access = brokerAccessFromEnv(config);
    if (access) await access.sync(db.prisma);
    // This controller's lock, before its broker session: a peer may be draining that session (004).
    const peers = config.DATABASE_URL
      ? await PeerSessions.start({
          databaseUrl: config.DATABASE_URL,
          brokerUrl: mqttUrl,
          brokerOptions: tls,
          controllerId: config.PODFLEET_CONTROLLER_ID,
          ingest,
          log: logger,
        })
      : undefined;
    if (peers) cleanups.push(() => peers.close());
    // Listening before CONNACK: what waited in the broker session for this controller comes first.
    const broker: BrokerSession = await connectBroker(
      mqttUrl,
      {
        ...tls,
        ...embedded?.controllerLogin,
        ...controllerSessionOptions(
          config.PODFLEET_CONTROLLER_ID,
          config.PODFLEET_MQTT_SESSION_EXPIRY,
        ),
      },
      (client) => ingest.listen(client),
    );
    cleanups.push(() => broker.client.endAsync());
    // MQTT.js reconnects on its own; an error event without a listener would end the process.
    broker.client.on('error', (error) => logger.warn({ err: error }, 'broker connection error'));
    broker.client.on('reconnect', () => logger.info('reconnecting to the broker'));
    logger.info(
      {
        broker: redactUrl(mqttUrl),
        embedded: Boolean(embedded),
        shared: broker.sharedSubscriptions,
      },
      'broker connected',
    );

    const commands = new DeviceCommands(broker.client);
    await commands.start();
    cleanups.push(async () => commands.close());

    const replayed = await ingest.replay();
    if (replayed > 0) logger.info({ replayed }, 'ingest journal replayed');
    await ingest.subscribe(broker.client, broker.sharedSubscriptions);
    if (broker.sharedSubscriptions) {
      const left = await leaveFormerShareGroups(
        broker.client,
        config.PODFLEET_DATA,
        shareGroup,
        ingest.topicFilters(false),
      );
      if (left.length > 0) logger.info({ groups: left }, 'left former share groups');
    }
    if (broker.sharedSubscriptions) peers?.watch();

    const { key, created } = loadSigningKey(config, config.PODFLEET_DATA);
    if (created) logger.info({ keyId: key.keyId }, 'manifest signing key created');
    // What agents (and `podfleet-agent sim --key`) trust: the public half, beside the data.
    writeFileSync(join(config.PODFLEET_DATA, 'controller-public-key.pem'), key.publicKeyPem);
    // Manifests signed by a key rotated out since: signed again, the rotation chain with them.
    await resignManifests(db.prisma, key);
    const issuers = [controllerKeyIssuer(key), ...(access ? [brokerCredentialIssuer(access)] : [])];
    const api = typeof routes === 'function' ? routes({ enroll: { issuers } }) : routes;
    const sync = new DesiredSync({
      db,
      publisher: mqttManifestPublisher(broker.client, { log: logger }),
      key,
      log: logger,
      rollouts: loadRolloutOverrides,
    });
    cleanups.push(() => sync.close());
    await sync.republishAll();
    await sync.recompute();

    const rollouts = new RolloutEngine({
      db,
      sync,
      log: logger,
      ...(registries ? { resolveImage: (image) => resolveImageDigest(image, registries) } : {}),
    });
    cleanups.push(() => rollouts.close());
    // Device results wake the engine at once; it also looks every second.
    ingest.onStored = () => rollouts.poke();
    rollouts.run();

    const sweeper = setInterval(() => {
      void withSession
        .run((session) => markSilentDevicesOffline(session, config.PODFLEET_OFFLINE_AFTER))
        .catch((error: unknown) => logger.warn({ err: error }, 'offline sweep failed'));
    }, 15_000);
    cleanups.push(async () => clearInterval(sweeper));

    const app = await buildApp(
      { db, fleet: sync, log: logger },
      [...api, rolloutRoutes(rollouts), commandRoutes(commands)],
      [
        dashboardPage,
        readinessPage([
          { name: 'database', probe: async () => void (await db.prisma.$queryRaw`SELECT 1`) },
          {
            name: 'broker',
            probe: async () => {
              if (!broker.client.connected) throw new Error('not connected');
            },
          },
        ]),
      ],
    );
    cleanups.push(() => app.close());
    const address = await app
      .listen({ host: config.HOST, port: config.PORT })
      .catch((error: NodeJS.ErrnoException) => {
        throw new Error(
          error.code === 'EADDRINUSE'
            ? `HTTP: ${config.HOST}:${config.PORT} is in use (set PORT or --port)`
            : `HTTP: ${error.message}`,
        );
      });
    logger.info({ url: address, docs: `${address}/docs` }, 'controller listening');

    return {
      url: address,
      mqttUrl,
      publicKeyPem: key.publicKeyPem,
      db,
      app,
      sync,
      rollouts,
      ingest,
      log: logger,
      close: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
