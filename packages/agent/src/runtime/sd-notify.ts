import { execFile } from 'node:child_process';
import { systemClock, type Clock, type Timer } from '../clock/clock.js';

/** Sends one notification, its VARIABLE=VALUE fields in order, to the service manager. */
export type NotifySend = (fields: readonly string[]) => Promise<void>;

export interface SdNotifyOptions {
  clock?: Clock;
  /** Where a notification that could not be sent is told (the agent's log). */
  onError?: (message: string) => void;
  /** How a notification leaves; systemd-notify by default. */
  send?: (socket: string) => NotifySend;
}

/** The variables systemd sets for a Type=notify service with WatchdogSec= (sd_notify(3)). */
const NOTIFY_ENV = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;
const SEND_TIMEOUT_MS = 10_000;

/**
 * The agent's half of systemd's notify protocol: READY=1, STATUS=, STOPPING=1 and WATCHDOG=1
 * keep-alives. Node cannot open a unix datagram socket, so each notification is one run of
 * `systemd-notify`, which every systemd device has. Its defaults make that reliable: as root it
 * sends with its parent's pid (the agent, the unit's main process), so systemd finds the unit
 * whenever it reads the message, and it exits only after systemd has read it (BARRIER=1), which
 * covers a sender that may not set the pid. With neither, systemd 252 dropped 11 and 257 7 of 100
 * READY=1 whose sender had exited first (docs/device-lab.md).
 * Notifications go out one at a time, in the order asked. Without NOTIFY_SOCKET, nothing is sent.
 */
export class SdNotify {
  /** How often WATCHDOG=1 goes out: half of WATCHDOG_USEC; undefined without a watchdog. */
  readonly keepAliveMs: number | undefined;
  private readonly clock: Clock;
  private readonly onError: (message: string) => void;
  private queue: Promise<void> = Promise.resolve();
  private keepAlive: Timer | undefined;
  private keepAliveDue = false;
  private closed = false;

  private constructor(
    private readonly send: NotifySend | undefined,
    watchdogUsec: number | undefined,
    options: SdNotifyOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.onError = options.onError ?? (() => undefined);
    this.keepAliveMs =
      send && watchdogUsec ? Math.max(1, Math.floor(watchdogUsec / 2000)) : undefined;
    this.armKeepAlive();
  }

  /**
   * Takes NOTIFY_SOCKET and the watchdog variables out of `env`, as sd_notify(unset_environment=1)
   * does: the podman and systemctl processes the agent runs must not notify on the agent's behalf.
   * The watchdog is ours only when WATCHDOG_PID, if set, is our pid (sd_watchdog_enabled).
   */
  static fromEnvironment(
    env: NodeJS.ProcessEnv,
    options: SdNotifyOptions = {},
    pid = process.pid,
  ): SdNotify {
    const [socket, usec, watchdogPid] = NOTIFY_ENV.map((name) => env[name]);
    for (const name of NOTIFY_ENV) delete env[name];
    const send = socket ? (options.send ?? systemdNotify)(socket) : undefined;
    const forUs = watchdogPid === undefined || Number(watchdogPid) === pid;
    const watchdogUsec =
      usec !== undefined && /^\d+$/.test(usec) && forUs ? Number(usec) : undefined;
    return new SdNotify(send, watchdogUsec || undefined, options);
  }

  /** Whether systemd listens (NOTIFY_SOCKET was set). */
  get enabled(): boolean {
    return this.send !== undefined;
  }

  /** Start-up is complete: a Type=notify unit turns active. */
  ready(status: string): Promise<void> {
    return this.notify(['READY=1', statusField(status)]);
  }

  /** What `systemctl status` shows on its Status: line. */
  status(text: string): Promise<void> {
    return this.notify([statusField(text)]);
  }

  /** The agent is on its way out (not a crash): systemd shows the unit deactivating. */
  stopping(status = 'stopping'): Promise<void> {
    return this.notify(['STOPPING=1', statusField(status)]);
  }

  /** Stops the keep-alives; notifications already asked for still go out. */
  close(): Promise<void> {
    this.closed = true;
    this.keepAlive?.cancel();
    this.keepAlive = undefined;
    return this.queue;
  }

  private notify(fields: readonly string[]): Promise<void> {
    const send = this.send;
    if (!send) return Promise.resolve();
    this.queue = this.queue.then(() =>
      send(fields).catch((error: Error) =>
        this.onError(`sd_notify ${fields[0]}: ${error.message}`),
      ),
    );
    return this.queue;
  }

  /** WATCHDOG=1 every keepAliveMs from the event loop; one waiting is enough, never a backlog. */
  private armKeepAlive(): void {
    const period = this.keepAliveMs;
    if (period === undefined || this.closed) return;
    this.keepAlive = this.clock.setTimer(period, () => {
      if (!this.keepAliveDue) {
        this.keepAliveDue = true;
        void this.notify(['WATCHDOG=1']).finally(() => (this.keepAliveDue = false));
      }
      this.armKeepAlive();
    });
  }
}

/** One line: a newline would start another field of the message. */
function statusField(text: string): string {
  return `STATUS=${text.replace(/[\r\n]+/g, ' ').trim()}`;
}

/**
 * `systemd-notify -- FIELD…` with only NOTIFY_SOCKET (and PATH) in its environment. Its defaults
 * are what make it reliable: the agent's pid as sender and a barrier before it exits.
 */
export function systemdNotify(socket: string, program = 'systemd-notify'): NotifySend {
  const env = { NOTIFY_SOCKET: socket, PATH: process.env.PATH ?? '/usr/bin:/bin' };
  return (fields) =>
    new Promise((resolve, reject) => {
      execFile(
        program,
        ['--', ...fields],
        { env, timeout: SEND_TIMEOUT_MS },
        (error, _stdout, stderr) => {
          if (!error) return resolve();
          const said = stderr.trim().split('\n').at(-1);
          reject(new Error(`${program}: ${said || error.message}`));
        },
      );
    });
}
