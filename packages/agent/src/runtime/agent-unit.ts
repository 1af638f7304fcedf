import type { Logger } from 'pino';
import type { StateReport } from '@podfleet/shared';
import { systemClock, type Clock } from '../clock/clock.js';
import type { DeviceLink } from '../session/device-link.js';
import type { AgentObserver } from './device-agent.js';
import type { SdNotify } from './sd-notify.js';

/**
 * READY=1 at the latest this long after start. The device's services are units of their own that
 * systemd runs without the agent; an agent held in `activating` would only hold up the boot (and
 * whatever is ordered after it) and be killed at TimeoutStartSec, again and again, while the broker
 * is out of reach or a first apply pulls a large image. The unit's TimeoutStartSec is three times this.
 */
export const READY_GRACE_MS = 30_000;
/** Connected this long without a retained manifest: the broker holds none for this device. */
export const MANIFEST_QUIET_MS = 3_000;

/** How the agent came to be ready. */
export type FirstReconcile =
  /** Connected, the retained manifest taken and applied (or checked against the host). */
  | 'reconciled'
  /** Connected; the broker had no manifest for this device. */
  | 'no-manifest'
  /** No connection within the grace: it keeps trying, systemd keeps what runs running. */
  | 'offline'
  /** Connected, the first reconcile still at work when the grace ran out. */
  | 'busy'
  /** Asked to stop first. */
  | 'stopped';

export interface FirstReconcileOptions {
  clock?: Clock;
  graceMs?: number;
  quietMs?: number;
  signal?: AbortSignal;
}

/**
 * Waits for the session's first connection, the retained manifest that follows its subscribe (or
 * a quiet spell without one), and the agent's lane to finish what the manifest started; all
 * within the grace.
 */
export async function awaitFirstReconcile(
  link: Pick<DeviceLink, 'connected' | 'on' | 'off'>,
  agent: { idle(): Promise<void> },
  options: FirstReconcileOptions = {},
): Promise<FirstReconcile> {
  const clock = options.clock ?? systemClock;
  const cleanups: Array<() => void> = [];
  const after = <T>(ms: number, value: T) =>
    new Promise<T>((resolve) => {
      const timer = clock.setTimer(ms, () => resolve(value));
      cleanups.push(() => timer.cancel());
    });
  const next = <T>(event: 'up' | 'desired', value: T) =>
    new Promise<T>((resolve) => {
      const listener = () => resolve(value);
      link.on(event, listener);
      cleanups.push(() => link.off(event, listener));
    });
  // Listening from the start: a manifest may come in the same turn as the connection.
  const up = next('up', 'up' as const);
  const desired = next('desired', 'desired' as const);
  const signal = options.signal;
  const stopped = new Promise<'stopped'>((resolve) => {
    const listener = () => resolve('stopped');
    if (signal?.aborted) listener();
    signal?.addEventListener('abort', listener, { once: true });
    cleanups.push(() => signal?.removeEventListener('abort', listener));
  });
  const end = Promise.race([after(options.graceMs ?? READY_GRACE_MS, 'grace' as const), stopped]);
  try {
    if (!link.connected) {
      const connected = await Promise.race([up, end]);
      if (connected !== 'up') return connected === 'stopped' ? 'stopped' : 'offline';
    }
    const quiet = after(options.quietMs ?? MANIFEST_QUIET_MS, 'quiet' as const);
    const first = await Promise.race([desired, quiet, end]);
    if (first === 'stopped') return 'stopped';
    if (first === 'grace') return 'busy';
    const idle = await Promise.race([agent.idle().then(() => 'idle' as const), end]);
    if (idle !== 'idle') return idle === 'stopped' ? 'stopped' : 'busy';
    return first === 'desired' ? 'reconciled' : 'no-manifest';
  } finally {
    for (const cleanup of cleanups) cleanup();
  }
}

export interface UnitStatusFacts {
  phase: 'starting' | 'running' | 'stopping';
  online: boolean;
  broker: string;
  /** From the agent's last state report. */
  generation?: number;
  services?: { ready: number; total: number };
}

/** The Status: line of `systemctl status podfleet-agent`. */
export function statusLine(facts: UnitStatusFacts): string {
  if (facts.phase === 'stopping') return 'stopping: saying offline, closing the session';
  const starting = facts.phase === 'starting';
  const link = facts.online
    ? `online (${facts.broker})`
    : `${starting ? 'connecting to' : 'offline, retrying'} ${facts.broker}`;
  const { ready, total } = facts.services ?? { ready: 0, total: 0 };
  const applied =
    facts.generation === undefined
      ? 'reading the host'
      : facts.generation === 0
        ? 'no manifest applied yet'
        : `generation ${facts.generation}, ${ready}/${total} services ready`;
  return `${starting ? 'starting: ' : ''}${link}; ${applied}`;
}

const READY_LOG: Record<Exclude<FirstReconcile, 'stopped'>, string> = {
  reconciled: 'ready: connected, first reconcile done',
  'no-manifest': 'ready: connected, no manifest for this device yet',
  offline: 'ready without the broker: keeping what runs, still trying to connect',
  busy: 'ready while the first reconcile still runs',
};

/**
 * The agent's side of its own systemd unit: READY=1 after the first reconcile, a STATUS= line that
 * follows the session and the agent's state reports (sent only when it changes), STOPPING=1.
 */
export class AgentUnit {
  private facts: UnitStatusFacts;
  private sent = '';
  private detach: () => void = () => undefined;

  constructor(
    private readonly notify: SdNotify,
    broker: string,
    private readonly logger?: Logger,
  ) {
    this.facts = { phase: 'starting', online: false, broker: withoutCredentials(broker) };
    void this.update({});
  }

  /** For startDeviceAgent: each state report updates the status line. */
  readonly observer: AgentObserver = {
    state: (report: StateReport) => {
      const ready = report.services.filter((service) => service.ready).length;
      void this.update({
        generation: report.generation,
        services: { ready, total: report.services.length },
      });
    },
  };

  /** READY=1 once the first reconcile is done (awaitFirstReconcile); follows the link from then on. */
  async started(
    session: Pick<DeviceLink, 'connected' | 'on' | 'off'>,
    agent: { idle(): Promise<void> },
    options: FirstReconcileOptions = {},
  ): Promise<FirstReconcile> {
    const follow = () => void this.update({ online: session.connected });
    session.on('up', follow);
    session.on('down', follow);
    this.detach = () => {
      session.off('up', follow);
      session.off('down', follow);
    };
    follow();
    const how = await awaitFirstReconcile(session, agent, options);
    if (how === 'stopped') return how;
    this.logger?.info(READY_LOG[how]);
    this.facts = { ...this.facts, phase: 'running', online: session.connected };
    this.sent = statusLine(this.facts);
    await this.notify.ready(this.sent);
    return how;
  }

  /** STOPPING=1; the status stops following the session. */
  async stopping(): Promise<void> {
    this.detach();
    this.facts = { ...this.facts, phase: 'stopping' };
    this.sent = statusLine(this.facts);
    await this.notify.stopping(this.sent);
  }

  private update(change: Partial<UnitStatusFacts>): Promise<void> {
    this.facts = { ...this.facts, ...change };
    const line = statusLine(this.facts);
    if (line === this.sent || this.facts.phase === 'stopping') return Promise.resolve();
    this.sent = line;
    return this.notify.status(line);
  }
}

/** A URL may carry user:password; the status line is readable by every user of the device. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}
