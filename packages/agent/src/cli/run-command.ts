import type { Command } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadAgentConfig } from '../config/load-config.js';
import { AgentUnit } from '../runtime/agent-unit.js';
import { SdNotify } from '../runtime/sd-notify.js';
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
      // Under systemd (Type=notify): READY=1 after the first reconcile, STATUS=, WATCHDOG=1.
      const notify = SdNotify.fromEnvironment(process.env, { onError: (m) => logger.warn(m) });
      const unit = new AgentUnit(notify, config.broker.url, logger);
      try {
        const running = await startDeviceAgent(loaded, driver, logger, unit.observer);
        io.stderr.write(`podfleet-agent: ${config.device} running, broker ${config.broker.url}\n`);
        await unit.started(running.session, running.agent, { signal });
        await untilAborted(signal);
        await unit.stopping();
        await running.stop();
      } finally {
        await notify.close();
      }
    });
}
