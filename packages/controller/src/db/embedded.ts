import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';

// The embedded default store: PGlite (Postgres compiled to WebAssembly, in this process) with
// its files under PODFLEET_DATA. Why PGlite and what it cannot do: docs/decisions/002.

export interface EmbeddedStore {
  db: PGlite;
  /** The PGlite data directory. */
  dir: string;
  close(): Promise<void>;
}

/**
 * Opens (creating on first use, which takes a few seconds) the store under `dataDir`. One
 * process at a time: PGlite has no postmaster to keep a second one out, so a pid file does.
 */
export async function openEmbeddedStore(dataDir: string): Promise<EmbeddedStore> {
  const dir = resolve(dataDir, 'postgres');
  await mkdir(dir, { recursive: true });
  const lockFile = join(dataDir, 'postgres.pid');
  await takeLock(lockFile, dir);
  try {
    const db = await PGlite.create(dir);
    return {
      db,
      dir,
      async close() {
        await db.close();
        await rm(lockFile, { force: true });
      },
    };
  } catch (error) {
    await rm(lockFile, { force: true });
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`embedded store ${dir}: cannot open: ${reason}`, { cause: error });
  }
}

async function takeLock(lockFile: string, dir: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      // wx: created only if absent, so two processes cannot both take it.
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && isRunning(holder)) {
      throw new Error(`embedded store ${dir} is in use by process ${holder}`);
    }
    await rm(lockFile, { force: true }); // left behind by a process that died
  }
  throw new Error(`embedded store ${dir}: cannot take ${lockFile}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
