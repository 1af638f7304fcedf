import { readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { formatIssues } from '@podfleet/shared';
import { removeFileDurably, writeFileDurably } from '../durable/durable-file.js';
import { OutboxEntry, type OutboxStore } from './outbox-store.js';

const ENTRY_FILE = /^(\d{12})\.json$/;

/**
 * The outbox on disk: one file per message (`outbox/000000000042.json`) in the state directory,
 * written durably, so a crash or a power cut leaves a whole message or none. A message is a few
 * hundred bytes and there are few per minute: one file each keeps removal after the PUBACK a single
 * unlink, synced too: a state report that came back after a power cut would be sent again, stale.
 */
export class FileOutboxStore implements OutboxStore {
  private readonly directory: string;

  /** `corrupt` hears of a message file that cannot be read; it is set aside as NAME.corrupt. */
  constructor(
    stateDirectory: string,
    private readonly corrupt: (path: string, reason: string) => void = () => undefined,
  ) {
    this.directory = join(stateDirectory, 'outbox');
  }

  async load(): Promise<OutboxEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const entries: OutboxEntry[] = [];
    for (const name of names.filter((n) => ENTRY_FILE.test(n)).sort()) {
      const path = join(this.directory, name);
      const problem = await readEntry(path).then(
        (entry) => (entries.push(entry), undefined),
        (error: Error) => error.message,
      );
      // One unreadable message must not stop the agent, nor be retried forever.
      if (problem !== undefined) {
        this.corrupt(path, problem);
        await rename(path, `${path}.corrupt`);
      }
    }
    return entries;
  }

  async append(entry: OutboxEntry): Promise<void> {
    // On disk before it is sent: a power cut must not lose it.
    await writeFileDurably(this.pathOf(entry.seq), JSON.stringify(entry));
  }

  async remove(seq: number): Promise<void> {
    await removeFileDurably(this.pathOf(seq));
  }

  private pathOf(seq: number): string {
    return join(this.directory, `${String(seq).padStart(12, '0')}.json`);
  }
}

async function readEntry(path: string): Promise<OutboxEntry> {
  const parsed = OutboxEntry.safeParse(JSON.parse(await readFile(path, 'utf8')));
  if (!parsed.success) throw new Error(formatIssues(parsed.error).join('; '));
  return parsed.data;
}
