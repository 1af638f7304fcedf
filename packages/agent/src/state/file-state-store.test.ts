import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { renderUnits, ServiceSpec } from '@podfleet/shared';
import type { AppliedRecord, ServiceBackup } from './applied-record.js';
import { FileStateStore } from './file-state-store.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'podfleet-state-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const spec = ServiceSpec.parse({
  name: 'web',
  image: 'registry.example/acme/web:1',
  env: { A: '1' },
});

describe('FileStateStore', () => {
  it('round-trips the applied record and backups, leaving no temporary files', async () => {
    const store = new FileStateStore(directory);
    expect(await store.loadApplied()).toBeUndefined();
    const record: AppliedRecord = {
      generation: 4,
      style: 'service',
      services: [{ spec, files: renderUnits(spec, { style: 'service' }), imageId: 'b'.repeat(64) }],
      failed: [],
    };
    await store.saveApplied(record);
    expect(await new FileStateStore(directory).loadApplied()).toEqual(record);

    const backup: ServiceBackup = {
      name: 'web',
      files: [],
      enabled: ['web.service'],
      active: [],
      ready: { timeout: 60, settle: 15 },
      health: false,
    };
    await store.saveBackup(backup);
    expect(await store.loadBackup('web')).toEqual(backup);
    await store.dropBackup('web');
    expect(await store.loadBackup('web')).toBeUndefined();
    expect(await readdir(directory)).toEqual(['applied.json', 'backup']);
    expect(await readdir(join(directory, 'backup'))).toEqual([]);
  });

  it('lists the services with a backup: unfinished changes, not the temporary files of a crashed write', async () => {
    const store = new FileStateStore(directory);
    expect(await store.listBackups()).toEqual([]);
    const backup = (name: string): ServiceBackup => ({
      name,
      files: [],
      enabled: [],
      active: [],
      ready: { timeout: 60, settle: 15 },
      health: false,
    });
    await store.saveBackup(backup('web'));
    await store.saveBackup(backup('api'));
    // What writeFileDurably leaves when the power goes before its rename.
    await writeFile(join(directory, 'backup', '.db.json.0a1b2c3d4e5f.tmp'), '{');
    expect(await store.listBackups()).toEqual(['api', 'web']);
  });

  it('refuses a corrupt record with the file and the field', async () => {
    await writeFile(join(directory, 'applied.json'), JSON.stringify({ generation: -1 }));
    await expect(new FileStateStore(directory).loadApplied()).rejects.toThrow(
      /applied\.json: generation: /,
    );
    expect(await readFile(join(directory, 'applied.json'), 'utf8')).toContain('-1');
  });

  it('keeps the controller keys trusted after a rotation across restarts', async () => {
    const store = new FileStateStore(directory);
    expect(await store.loadTrustedKeys()).toBeUndefined();
    const key = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n';
    await store.saveTrustedKeys([key]);
    expect(await new FileStateStore(directory).loadTrustedKeys()).toEqual([key]);
    expect((await stat(join(directory, 'trusted-keys.json'))).mode & 0o777).toBe(0o600);
    await writeFile(join(directory, 'trusted-keys.json'), JSON.stringify({ keys: [] }));
    await expect(new FileStateStore(directory).loadTrustedKeys()).rejects.toThrow(
      /trusted-keys\.json: keys: /,
    );
  });

  it('refuses a service name that could escape the directory', async () => {
    await expect(new FileStateStore(directory).loadBackup('../etc')).rejects.toThrow(
      'not a service name',
    );
  });
});
