import type { AutoUpdateResult, ServiceState, UnitFile, UnitScope } from '@podfleet/shared';
import type { z } from 'zod';

/** systemd's ActiveState (systemctl show -p ActiveState). */
export type ActiveState = ServiceState['unit']['active'];

/** systemd's UnitFileState, narrowed to what podfleet acts on. */
export type UnitFileState =
  'enabled' | 'disabled' | 'static' | 'generated' | 'masked' | 'not-found';

/** Podman's view of the container a unit runs (podman inspect on the unit's cidfile). */
export interface ContainerStatus {
  id: string;
  /** The local image id (64 hex digits) the container was created from. */
  imageId: string;
  health: 'healthy' | 'unhealthy' | 'starting' | 'none';
}

/** One unit as `systemctl show` reports it. */
export interface UnitStatus {
  unit: string;
  /** LoadState: `not-found` until a daemon-reload has seen the file. */
  load: 'loaded' | 'not-found' | 'bad-setting';
  active: ActiveState;
  /** SubState: running, start, auto-restart, listening, dead, failed, … */
  sub: string;
  /** Result of the last run: success, exit-code, timeout, start-limit-hit, … */
  result: string;
  /** NRestarts: automatic restarts since the last manual start. */
  restarts: number;
  /** ActiveEnterTimestamp as an ISO time: when the unit last entered active; absent if never. */
  activeSince?: string;
  /** MainPID, 0 when none. */
  mainPid: number;
  fileState: UnitFileState;
  /** NeedDaemonReload: the file on disk differs from what systemd loaded. */
  needsReload: boolean;
  /**
   * Job: systemd has a job queued for it, e.g. a start still waiting at boot behind its ordering
   * (a user manager reports ready before its services are up).
   */
  jobQueued?: boolean;
  container?: ContainerStatus;
}

/** One row of `podman auto-update --format json`, in the shape of the auto-update event. */
export type AutoUpdateRow = z.output<typeof AutoUpdateResult>;

export interface AutoUpdateOptions {
  /** `--dry-run`: report `pending` instead of updating. */
  dryRun: boolean;
  /** `--rollback` (Podman's default): restart on the previous image when the restart fails. */
  rollback?: boolean;
}

/**
 * Everything the executor may do to a device: systemd's units and Podman's images in one scope
 * (system: /etc/…, rootful; user: ~/.config/…, rootless). Errors are thrown as `Error` whose message
 * is the tool's own one-line reason.
 */
export interface HostDriver {
  readonly scope: UnitScope;

  /** The .service, .socket and .container files in the scope's two unit directories. */
  listUnitFiles(): Promise<UnitFile[]>;
  readUnitFile(kind: UnitFile['kind'], name: string): Promise<UnitFile | undefined>;
  /**
   * Writes a unit file durably (temp file, fsync, rename, fsync directory): systemd never reads
   * half a file, and after a power cut the old file or the new one is there.
   */
  writeUnitFile(file: UnitFile): Promise<void>;
  /** Removes a unit file for good (the directory synced); a file not there is not an error. */
  removeUnitFile(kind: UnitFile['kind'], name: string): Promise<void>;

  /** `systemctl daemon-reload`: loads changed files and runs the Quadlet generator. */
  daemonReload(): Promise<void>;
  /**
   * `systemctl start`. Resolves once systemd has taken the job (the unit has left its previous run);
   * it need not wait for readiness. Rejects when systemd refuses it (unit not found, bad setting).
   */
  start(unit: string): Promise<void>;
  /** `systemctl restart`, with start()'s contract. */
  restart(unit: string): Promise<void>;
  /** `systemctl stop`: resolves when the unit is stopped. */
  stop(unit: string): Promise<void>;
  enable(unit: string): Promise<void>;
  disable(unit: string): Promise<void>;
  /** `systemctl reset-failed`: clears the failed state and the start rate limit. */
  resetFailed(unit: string): Promise<void>;
  unitStatus(unit: string): Promise<UnitStatus>;

  /** `podman pull`: the local image id of the reference afterwards. */
  pullImage(reference: string): Promise<string>;
  /** The local image id a reference resolves to, or undefined when it is not in local storage. */
  imageId(reference: string): Promise<string | undefined>;
  /**
   * The manifest digest (`sha256:…`) of a local image, by id or reference, as a registry names it;
   * undefined when the image is not in local storage.
   */
  imageDigest(image: string): Promise<string | undefined>;
  /** `podman tag`: points a reference at a local image (how a rollback restores the old image). */
  tagImage(imageId: string, reference: string): Promise<void>;

  podmanVersion(): Promise<string>;
  systemdVersion(): Promise<string>;

  /** `podman auto-update --format json [--dry-run] [--rollback]`, one row per container. */
  autoUpdate(options: AutoUpdateOptions): Promise<AutoUpdateRow[]>;
  /** The last `lines` lines of `journalctl -u UNIT`. */
  journal(unit: string, lines: number): Promise<string[]>;
}
