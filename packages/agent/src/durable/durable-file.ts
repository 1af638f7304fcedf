import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface DurableWriteOptions {
  /** The file's mode; 0600 by default, for state that may hold secrets. */
  mode?: number;
  /** The mode of parent directories it has to create; 0700 by default. */
  directoryMode?: number;
}

/**
 * Replaces `path` with `data` so that a crash or a power cut at any moment leaves the old file or
 * the new one, whole: write a temporary file in the same directory, fsync it, rename it over
 * `path`, fsync the directory. Without the last step the rename may never reach the disk.
 */
export async function writeFileDurably(
  path: string,
  data: string,
  { mode = 0o600, directoryMode = 0o700 }: DurableWriteOptions = {},
): Promise<void> {
  const directory = dirname(path);
  await makeDirectoryDurably(directory, directoryMode);
  // Same directory (rename is atomic only within one file system); a hidden name ending in .tmp
  // that no systemd, Quadlet or store glob matches.
  const temporary = join(directory, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', mode);
    try {
      await handle.writeFile(data);
      await handle.sync(); // the bytes reach the disk before the name points at them
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(directory); // …and the rename itself survives a power cut
}

/** Removes `path` (if there) so that the removal survives a power cut: unlink, fsync the directory. */
export async function removeFileDurably(path: string): Promise<void> {
  await rm(path, { force: true });
  // Synced even when the file was gone already: an earlier run may have crashed before its sync.
  await syncDirectory(dirname(path)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

async function makeDirectoryDurably(directory: string, mode: number): Promise<void> {
  const first = await mkdir(directory, { recursive: true, mode });
  if (first === undefined) return;
  // A new directory's entry lives in its parent: sync the parent of each one mkdir made.
  for (let made = directory; ; made = dirname(made)) {
    await syncDirectory(dirname(made));
    if (made === first) return;
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
