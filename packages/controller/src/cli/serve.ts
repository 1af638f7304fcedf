import type { Command } from 'commander';
import { ensureAdminToken, writeAdminToken } from '../auth/bootstrap.js';
import { apiRoutes } from '../http/routes.js';
import { ConfigError, readServeConfig } from '../serve/config.js';
import { redactUrl } from '../serve/redact-url.js';
import { startController } from '../serve/serve.js';
import { CliError, EXIT, type CliIo } from './io.js';

export function registerServe(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('run the controller: HTTP API and dashboard, MQTT bridge, desired-state sync')
    .option('--port <port>', 'HTTP port (env PORT, default 8080)')
    .option('--data <dir>', 'data directory (env PODFLEET_DATA, default .podfleet)')
    .addHelpText(
      'after',
      `
Environment:
  DATABASE_URL    Postgres (postgres://…); unset: the embedded store under PODFLEET_DATA
  MQTT_URL        broker (mqtt://user:pass@host:1883); unset: an embedded broker on
                  PODFLEET_MQTT_HOST:PODFLEET_MQTT_PORT (127.0.0.1:1883)
  PORT, HOST      where the API listens (8080, 127.0.0.1)
  PODFLEET_DATA   keys, ingest journal, embedded store (.podfleet)
  PODFLEET_SIGNING_KEY  the manifest-signing key (PEM); controllers of one fleet share it
  PODFLEET_RESOLVE_TAGS  registry (default): a rollout's tag is resolved to one digest when it
                  starts; off: tags are rolled out as given
  PODFLEET_REGISTRY_AUTH_FILE  registry logins, containers-auth.json, as podman login writes it
  PODFLEET_REGISTRY_INSECURE   registries (host:port, comma-separated) spoken to over plain http
  PODFLEET_REGISTRY_CERTS_DIR  registry CAs and client certificates, containers-certs.d(5) layout
                               (default: /etc/containers/certs.d, then /etc/docker/certs.d)
  (broker accounts and TLS: docs/security.md)`,
    )
    .action(async (flags: { port?: string; data?: string }) => {
      const env = { ...process.env };
      if (flags.port !== undefined) env.PORT = flags.port;
      if (flags.data !== undefined) env.PODFLEET_DATA = flags.data;
      let config;
      try {
        config = readServeConfig(env);
      } catch (error) {
        if (error instanceof ConfigError) throw new CliError(error.lines);
        throw error;
      }
      const controller = await startController(config, apiRoutes).catch((error: Error) => {
        throw new CliError([error.message], EXIT.failed);
      });
      // Listening for the stop signals before saying it runs: whoever reads that line may stop it.
      const stopped = new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      // Secrets go to files, never to the output: logs are collected and kept by others.
      const token = await ensureAdminToken(controller.db.prisma);
      if (token) {
        const file = await writeAdminToken(config.PODFLEET_DATA, token);
        io.stdout.write(`admin token written to ${file} (readable by this user only)\n`);
      }
      io.stdout.write(
        `podfleet controller on ${controller.url} (API docs ${controller.url}/docs), broker ${redactUrl(controller.mqttUrl)}\n`,
      );
      await stopped;
      io.stdout.write('stopping: storing what was received…\n');
      await controller.close();
    });
}
