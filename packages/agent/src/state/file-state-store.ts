import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { formatIssues, SERVICE_NAME } from '@podfleet/shared';
import { AppliedRecord, ServiceBackup, TrustedKeys } from './applied-record.js';
import type { StateStore } from './state-store.js';

/**
 * The state directory on disk (/var/lib/podfleet): `applied.json`, `backup/NAME.json` and, once a
 * controller key rotation was followed, `trusted-keys.json`; each written to a temporary file and
 * renamed over the old one, so a crash leaves the old or the new.
 */
export class FileStateStore implements StateStore {
  constructor(private readonly directory: string) {}

  loadApplied(): Promise<AppliedRecord | undefined> {
    return this.read(join(this.directory, 'applied.json'), AppliedRecord);
  }

  saveApplied(record: AppliedRecord): Promise<void> {
    return this.write(join(this.directory, 'applied.json'), record);
  }

  async loadBackup(service: string): Promise<ServiceBackup | undefined> {
    return this.read(this.backupPath(service), ServiceBackup);
  }

  async saveBackup(backup: ServiceBackup): Promise<void> {
    return this.write(this.backupPath(backup.name), backup);
  }

  async dropBackup(service: string): Promise<void> {
    await rm(this.backupPath(service), { force: true });
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

  private async write(path: string, value: unknown): Promise<void> {
    await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    const temporary = `${path}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(value, null, 2)}\n`);
      await handle.sync(); // edge devices lose power: the data must be on disk before the rename
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  }
}
