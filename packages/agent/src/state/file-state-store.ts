import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { formatIssues, SERVICE_NAME } from '@podfleet/shared';
import { removeFileDurably, writeFileDurably } from '../durable/durable-file.js';
import { AppliedRecord, ServiceBackup, TrustedKeys } from './applied-record.js';
import type { StateStore } from './state-store.js';

/**
 * The state directory on disk (/var/lib/podfleet): `applied.json`, `backup/NAME.json` and, once a
 * controller key rotation was followed, `trusted-keys.json`; each written durably (mode 0600), so a
 * crash or a power cut leaves the old or the new, and a dropped backup stays dropped.
 */
export class FileStateStore implements StateStore {
  constructor(private readonly directory: string) {}

  loadApplied(): Promise<AppliedRecord | undefined> {
    return this.read(join(this.directory, 'applied.json'), AppliedRecord);
  }

  saveApplied(record: AppliedRecord): Promise<void> {
    return this.write(join(this.directory, 'applied.json'), record);
  }

  /** Only `NAME.json`: a durable write's temporary file (`.NAME.json.….tmp`) is not a backup. */
  async listBackups(): Promise<string[]> {
    const names = await readdir(join(this.directory, 'backup')).catch(ignoreMissing);
    return names
      .filter((file) => file.endsWith('.json'))
      .map((file) => file.slice(0, -'.json'.length))
      .filter((name) => SERVICE_NAME.test(name))
      .sort();
  }

  async loadBackup(service: string): Promise<ServiceBackup | undefined> {
    return this.read(this.backupPath(service), ServiceBackup);
  }

  async saveBackup(backup: ServiceBackup): Promise<void> {
    return this.write(this.backupPath(backup.name), backup);
  }

  async dropBackup(service: string): Promise<void> {
    await removeFileDurably(this.backupPath(service));
  }

  async loadTrustedKeys(): Promise<string[] | undefined> {
    return (await this.read(join(this.directory, 'trusted-keys.json'), TrustedKeys))?.keys;
  }

  saveTrustedKeys(keys: readonly string[]): Promise<void> {
    return this.write(join(this.directory, 'trusted-keys.json'), { keys });
  }

  private backupPath(service: string): string {
    if (!SERVICE_NAME.test(service)) throw new Error(`not a service name: ${service}`);
    return join(this.directory, 'backup', `${service}.json`);
  }

  private async read<S extends z.ZodType>(
    path: string,
    schema: S,
  ): Promise<z.output<S> | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const parsed = schema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${path}: ${formatIssues(parsed.error).join('; ')}`);
    return parsed.data;
  }

  private write(path: string, value: unknown): Promise<void> {
    return writeFileDurably(path, `${JSON.stringify(value, null, 2)}\n`);
  }
}

function ignoreMissing(error: NodeJS.ErrnoException): string[] {
  if (error.code === 'ENOENT') return [];
  throw error;
}
