import { parseUnitFile, type UnitFile, type UnitScope } from '@podfleet/shared';
import type { Clock } from '../clock/clock.js';
import type {
  AutoUpdateOptions,
  AutoUpdateRow,
  HostDriver,
  UnitFileState,
  UnitStatus,
} from './host-driver.js';
import { MemoryImageStore } from './memory-images.js';
import { MemorySystemd, type RunningContainer } from './memory-systemd.js';
import { readerOf, unitNameOf } from './unit-definition.js';

export interface MemoryHostOptions {
  clock: Clock;
  scope?: UnitScope;
  podmanVersion?: string;
  systemdVersion?: string;
  /** How long after `podman run` conmon sends READY=1. */
  notifyDelayMs?: number;
  /** Seeds image and container ids, so that simulated devices differ. */
  name?: string;
  /** Journal lines kept per unit (a simulator with thousands of hosts keeps few). */
  journalLines?: number;
}

const UNIT_FILE_NAME = /^[A-Za-z0-9:_.@-]+\.(service|socket|container)$/;

/**
 * A device's systemd and Podman in memory, for tests and the simulator. Files become units only
 * at daemon-reload; Type=notify units are `activating` until READY=1; Restart=, TimeoutStartSec=
 * and StartLimitBurst= play out on the injected clock; images and registry tags are controllable
 * through `images`, and socket connections through `connect`.
 */
export class MemoryHost implements HostDriver {
  readonly scope: UnitScope;
  readonly images: MemoryImageStore;
  private readonly systemd: MemorySystemd;
  private readonly files = new Map<string, UnitFile>();
  private readonly enabled = new Set<string>();
  private readonly versions: { podman: string; systemd: string };

  constructor(options: MemoryHostOptions) {
    const name = options.name ?? 'memory-host';
    this.scope = options.scope ?? 'system';
    this.images = new MemoryImageStore(name);
    this.versions = {
      podman: options.podmanVersion ?? '5.4.2',
      systemd: options.systemdVersion ?? '257',
    };
    this.systemd = new MemorySystemd(
      options.clock,
      this.images,
      {
        notifyDelayMs: options.notifyDelayMs ?? 300,
        restartSecMs: 100,
        startLimitIntervalMs: 10_000,
        journalLines: options.journalLines ?? 200,
      },
      name,
    );
  }

  async listUnitFiles(): Promise<UnitFile[]> {
    return this.fileList().map((file) => ({ ...file }));
  }

  async readUnitFile(kind: UnitFile['kind'], name: string): Promise<UnitFile | undefined> {
    const file = this.files.get(`${kind}:${name}`);
    return file && { ...file };
  }

  async writeUnitFile(file: UnitFile): Promise<void> {
    const quadlet = file.name.endsWith('.container');
    if (!UNIT_FILE_NAME.test(file.name) || quadlet !== (file.kind === 'quadlet')) {
      throw new Error(`not a ${file.kind} unit file name: ${file.name}`);
    }
    this.files.set(`${file.kind}:${file.name}`, { ...file });
  }

  async removeUnitFile(kind: UnitFile['kind'], name: string): Promise<void> {
    this.files.delete(`${kind}:${name}`);
  }

  async daemonReload(): Promise<void> {
    this.systemd.reload(this.fileList());
  }

  async start(unit: string): Promise<void> {
    this.systemd.start(unit);
  }

  async restart(unit: string): Promise<void> {
    this.systemd.restart(unit);
  }

  async stop(unit: string): Promise<void> {
    this.systemd.stop(unit);
  }

  async enable(unit: string): Promise<void> {
    const file = this.enableable(unit);
    // A unit without [Install] is static: systemctl enable only warns about it.
    if (hasInstall(file)) this.enabled.add(unit);
  }

  async disable(unit: string): Promise<void> {
    this.enableable(unit);
    this.enabled.delete(unit);
  }

  async resetFailed(unit: string): Promise<void> {
    this.systemd.resetFailed(unit);
  }

  async unitStatus(unit: string): Promise<UnitStatus> {
    return {
      unit,
      ...this.systemd.status(unit),
      fileState: this.fileState(unit),
      needsReload: this.systemd.needsReload(unit, this.fileList()),
    };
  }

  async pullImage(reference: string): Promise<string> {
    return this.images.pull(reference);
  }

  async imageId(reference: string): Promise<string | undefined> {
    return this.images.localId(reference);
  }

  async imageDigest(image: string): Promise<string | undefined> {
    return this.images.digestOf(image);
  }

  async tagImage(imageId: string, reference: string): Promise<void> {
    this.images.tag(imageId, reference);
  }

  async podmanVersion(): Promise<string> {
    return this.versions.podman;
  }

  async systemdVersion(): Promise<string> {
    return this.versions.systemd;
  }

  /**
   * `podman auto-update`: for each running container with the autoupdate label, compares its image
   * with the registry's (registry) or local storage's (local) for the same reference; restarts the
   * unit on a newer one and waits for the restart job. With rollback, a failed restart re-tags the
   * old image and restarts again. Like Podman, a unit whose job succeeds is `true` even if its app
   * crashes a moment later: with --sdnotify=conmon the job succeeds as soon as conmon runs.
   */
  async autoUpdate(options: AutoUpdateOptions): Promise<AutoUpdateRow[]> {
    const rows: AutoUpdateRow[] = [];
    for (const running of this.systemd.runningContainers()) {
      const policy = running.definition.autoUpdate;
      if (policy !== 'registry' && policy !== 'local') continue;
      rows.push(await this.updateOne(running, policy, options));
    }
    return rows;
  }

  async journal(unit: string, lines: number): Promise<string[]> {
    return this.systemd.journal(unit, lines);
  }

  /**
   * A power cut and a boot: every unit and container is gone at once, systemd loads the files on
   * disk, and starts what is enabled (or wanted through a Quadlet [Install]) as a boot does.
   * Files and images stay; the agent's state directory is the caller's.
   */
  boot(): void {
    this.systemd.powerCut();
    this.systemd.reload(this.fileList());
    for (const file of this.fileList()) {
      const unit = unitNameOf(file);
      const wanted = file.kind === 'quadlet' ? hasInstall(file) : this.enabled.has(unit);
      if (wanted) this.systemd.start(unit);
    }
  }

  /** A client connects to a socket unit (socket activation starts the service). */
  connect(socketUnit: string): void {
    this.systemd.connect(socketUnit);
  }

  private async updateOne(
    { unit, definition, container }: RunningContainer,
    policy: 'registry' | 'local',
    options: AutoUpdateOptions,
  ): Promise<AutoUpdateRow> {
    const row = (updated: AutoUpdateRow['updated']): AutoUpdateRow => ({
      unit,
      container: `${container.id.slice(0, 12)} (${container.name})`,
      image: definition.image,
      policy,
      updated,
    });
    let candidate: string | undefined;
    try {
      candidate =
        policy === 'registry'
          ? this.images.remoteId(definition.image)
          : this.images.localId(definition.image);
    } catch {
      return row('failed');
    }
    if (candidate === undefined || candidate === container.imageId) return row('false');
    if (options.dryRun) return row('pending');
    if (policy === 'registry') this.images.pull(definition.image);
    if ((await this.restartAndWait(unit)) === 'done') return row('true');
    if (options.rollback === false) return row('failed');
    this.images.tag(container.imageId, definition.image);
    return (await this.restartAndWait(unit)) === 'done' ? row('rolled back') : row('failed');
  }

  private restartAndWait(unit: string) {
    this.systemd.restart(unit);
    return this.systemd.awaitJob(unit);
  }

  private fileList(): UnitFile[] {
    return [...this.files.values()].sort((a, b) =>
      a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind.localeCompare(b.kind),
    );
  }

  /** The file `systemctl enable/disable` acts on; Quadlet's generated units cannot be enabled. */
  private enableable(unit: string): UnitFile {
    const file = this.files.get(`systemd:${unit}`);
    if (file) return file;
    if (this.quadletSource(unit) || this.systemd.isGenerated(unit)) {
      throw new Error(`Failed to enable unit: Unit ${unit} is transient or generated.`);
    }
    throw new Error(`Failed to enable unit: Unit file ${unit} does not exist.`);
  }

  private fileState(unit: string): UnitFileState {
    const file = this.files.get(`systemd:${unit}`);
    if (file) return this.enabled.has(unit) ? 'enabled' : hasInstall(file) ? 'disabled' : 'static';
    return this.quadletSource(unit) ? 'generated' : 'not-found';
  }

  private quadletSource(unit: string): UnitFile | undefined {
    return unit.endsWith('.service')
      ? this.files.get(`quadlet:${unit.replace(/\.service$/, '.container')}`)
      : undefined;
  }
}

function hasInstall(file: UnitFile): boolean {
  try {
    return parseUnitFile(file.contents, readerOf(file)).some(
      (entry) => entry.section === 'Install',
    );
  } catch {
    return false;
  }
}
