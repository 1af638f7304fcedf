import type { Command } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadAgentConfig } from '../config/load-config.js';
import { startDeviceAgent } from '../runtime/start-agent.js';
import { createHostDriver } from './host-driver-factory.js';
import { CliError, EXIT, untilAborted, type CliIo } from './io.js';

export function registerRun(program: Command, io: CliIo, signal: AbortSignal): void {
  program
    .command('run')
    .description('run the agent for this device (as its systemd service does)')
    .option('-c, --config <file>', 'agent config (YAML)', '/etc/podfleet/agent.yaml')
    .action(async (options: { config: string }) => {
      const loaded = await loadAgentConfig(options.config).catch((error: Error) => {
        throw error instanceof ConfigError ? new CliError(error.message) : error;
      });
      const { config } = loaded;
      const logger = pino({ level: config.logLevel, base: { device: config.device } });
      const driver = await createHostDriver(config).catch((error: Error) => {
        throw new CliError(`host: ${error.message}`, EXIT.failed);
      });
      const running = await startDeviceAgent(loaded, driver, logger);
      io.stderr.write(`podfleet-agent: ${config.device} running, broker ${config.broker.url}\n`);
      await untilAborted(signal);
      await running.stop();
    });
}
