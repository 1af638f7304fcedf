import { chown, open, rename, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** One `user:hash` line of a Mosquitto password file. */
export interface PasswordEntry {
  username: string;
  hash: string;
}

/**
 * A Mosquitto password file: one `username:hash` line per account, sorted by username so that the
 * same accounts give the same bytes. A username with `:` or a line break would split a line.
 */
export function renderPasswordFile(entries: readonly PasswordEntry[]): string {
  const sorted = [...entries].sort((a, b) => (a.username < b.username ? -1 : 1));
  for (const { username } of sorted) {
    if (!username || /[:\r\n\0]/.test(username)) {
      throw new Error(
        `broker username ${JSON.stringify(username)}: not allowed in a password file`,
      );
    }
  }
  return sorted.map((entry) => `${entry.username}:${entry.hash}\n`).join('');
}

/** The usernames of a password file's lines (blank lines and `#` comments skipped). */
export function passwordFileUsers(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.slice(0, line.indexOf(':')));
}

/**
 * Replaces `path` with `text` the way the broker must see it: all of the old file or all of the
 * new one (a temporary file in the same directory, synced, renamed over it), with the old file's
 * owner, group and mode, so that a broker running as another user can still read it.
 */
export async function replaceFile(path: string, text: string, defaultMode = 0o640): Promise<void> {
  const previous = await stat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const handle = await open(temporary, 'w', previous ? previous.mode & 0o777 : defaultMode);
  try {
    await handle.writeFile(text);
    await handle.chmod(previous ? previous.mode & 0o777 : defaultMode);
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (previous && (previous.uid !== process.getuid?.() || previous.gid !== process.getgid?.())) {
    // Giving the file to its old owner needs root; a controller that is not root must own it.
    await chown(temporary, previous.uid, previous.gid);
  }
  await rename(temporary, path);
}
