import type { Logger } from 'pino';
import type { AgentConfig } from '@podfleet/shared';
import type { LoadedAgentConfig } from '../config/load-config.js';
import type { HostDriver } from '../host/host-driver.js';
import { FileOutboxStore } from '../outbox/file-outbox-store.js';
import { Outbox } from '../outbox/outbox.js';
import { DeviceSession } from '../session/device-session.js';
import { FileStateStore } from '../state/file-state-store.js';
import { DeviceAgent, type AgentObserver } from './device-agent.js';

export interface RunningAgent {
  agent: DeviceAgent;
  session: DeviceSession;
  outbox: Outbox;
  /** Says `offline`, disconnects; what waits in the outbox stays on disk for the next start. */
  stop(): Promise<void>;
}

/**
 * Starts one device's agent as its config says: the MQTT session, the outbox and the applied
 * record in the state directory, the timers. The host driver is the caller's choice; `observer`
 * hears its state reports (its systemd unit's status line).
 */
export async function startDeviceAgent(
  { config, password, ca }: LoadedAgentConfig,
  driver: HostDriver,
  logger: Logger,
  observer?: AgentObserver,
): Promise<RunningAgent> {
  const session = new DeviceSession({
    device: config.device,
    url: config.broker.url,
    ...(config.broker.username !== undefined ? { username: config.broker.username } : {}),
    ...(password !== undefined ? { password } : {}),
    ...(ca !== undefined ? { ca } : {}),
    keepaliveSeconds: config.broker.keepalive,
    sessionExpirySeconds: config.broker.sessionExpiry,
    logger,
  });
  const outboxStore = new FileOutboxStore(config.stateDir, (path, reason) =>
    logger.error(`outbox: set aside ${path}: ${reason}`),
  );
  const outbox = new Outbox(outboxStore, session, {}, logger);
  const agent = new DeviceAgent({
    device: config.device,
    trustedKeys: config.controller.publicKeys,
    driver,
    store: new FileStateStore(config.stateDir),
    link: session,
    outbox,
    logger,
    podman: config.podman,
    ...(config.settle !== undefined ? { settle: config.settle } : {}),
    intervals: intervalsOf(config),
    ...(observer ? { observer } : {}),
  });
  await outbox.open();
  await agent.start();
  session.start();
  return {
    agent,
    session,
    outbox,
    async stop() {
      agent.stop();
      outbox.close();
      await session.stop();
    },
  };
}

function intervalsOf(config: AgentConfig) {
  const schedule = config.autoUpdate.schedule;
  return {
    reportMs: config.reportInterval * 1000,
    driftMs: config.driftInterval * 1000,
    autoUpdateMs: schedule === 'off' ? undefined : schedule * 1000,
  };
}
