import type { AppliedRecord, ServiceBackup } from './applied-record.js';

/** The agent's state directory: the applied record and one backup per service being changed. */
export interface StateStore {
  loadApplied(): Promise<AppliedRecord | undefined>;
  saveApplied(record: AppliedRecord): Promise<void>;
  /** The services that have a backup: changes not finished or undone yet. */
  listBackups(): Promise<string[]>;
  loadBackup(service: string): Promise<ServiceBackup | undefined>;
  saveBackup(backup: ServiceBackup): Promise<void>;
  dropBackup(service: string): Promise<void>;
  /**
   * The controller keys trusted since the last key rotation the agent followed; undefined until
   * one happened (the config's keys, from enrollment, are trusted until then).
   */
  loadTrustedKeys(): Promise<string[] | undefined>;
  saveTrustedKeys(keys: readonly string[]): Promise<void>;
}

/** A state directory in memory (tests, the simulator). Stores copies, as a file would. */
export class MemoryStateStore implements StateStore {
  private applied: AppliedRecord | undefined;
  private readonly backups = new Map<string, ServiceBackup>();
  private trustedKeys: string[] | undefined;

  async loadApplied(): Promise<AppliedRecord | undefined> {
    return this.applied && structuredClone(this.applied);
  }

  async saveApplied(record: AppliedRecord): Promise<void> {
    this.applied = structuredClone(record);
  }

  async listBackups(): Promise<string[]> {
    return [...this.backups.keys()].sort();
  }

  async loadBackup(service: string): Promise<ServiceBackup | undefined> {
    const backup = this.backups.get(service);
    return backup && structuredClone(backup);
  }

  async saveBackup(backup: ServiceBackup): Promise<void> {
    this.backups.set(backup.name, structuredClone(backup));
  }

  async dropBackup(service: string): Promise<void> {
    this.backups.delete(service);
  }

  async loadTrustedKeys(): Promise<string[] | undefined> {
    return this.trustedKeys && [...this.trustedKeys];
  }

  async saveTrustedKeys(keys: readonly string[]): Promise<void> {
    this.trustedKeys = [...keys];
  }
}
