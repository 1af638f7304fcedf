import type { Command } from 'commander';
import { serveEnvironmentHelp } from '../serve/environment.js';
import { CliError, EXIT, type CliIo } from './io.js';

/**
 * The server, loaded only when `serve` runs: every other command (and --help) starts without
 * Fastify, Prisma, the broker (cli/startup.test.ts). Keep server imports in here.
 */
async function loadServer() {
  const [bootstrap, routes, config, redact, serve] = await Promise.all([
    import('../auth/bootstrap.js'),
    import('../http/routes.js'),
    import('../serve/config.js'),
    import('../serve/redact-url.js'),
    import('../serve/serve.js'),
  ]);
  return { ...bootstrap, ...routes, ...config, ...redact, ...serve };
}

export function registerServe(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('run the controller: HTTP API and dashboard, MQTT bridge, desired-state sync')
    .option('--port <port>', 'HTTP port (env PORT, default 8080)')
    .option('--data <dir>', 'data directory (env PODFLEET_DATA, default .podfleet)')
    .addHelpText('after', `\n${serveEnvironmentHelp()}`)
    .action(async (flags: { port?: string; data?: string }) => {
      const server = await loadServer();
      const { ConfigError, readServeConfig, startController, apiRoutes } = server;
      const { ensureAdminToken, writeAdminToken, redactUrl } = server;
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
