import { z } from 'zod';

/** One message waiting for the broker's PUBACK. */
export const OutboxEntry = z.strictObject({
  /** Order of enqueueing; messages go out in this order. */
  seq: z.number().int().positive(),
  kind: z.enum(['event', 'state']),
  topic: z.string().min(1),
  payload: z.string(),
  retain: z.boolean(),
});
export type OutboxEntry = z.output<typeof OutboxEntry>;

/** Where the outbox keeps its messages until acknowledged: the state directory, or memory. */
export interface OutboxStore {
  /** Every kept entry, in seq order. */
  load(): Promise<OutboxEntry[]>;
  /** Keeps an entry; once this resolves, it survives a crash. */
  append(entry: OutboxEntry): Promise<void>;
  /** Forgets an entry; removing one that is gone is not an error. */
  remove(seq: number): Promise<void>;
}

/** Keeps entries in memory (the simulator, tests): survives an agent restart, not a process exit. */
export class MemoryOutboxStore implements OutboxStore {
  private readonly entries = new Map<number, OutboxEntry>();

  async load(): Promise<OutboxEntry[]> {
    return [...this.entries.values()].sort((a, b) => a.seq - b.seq).map((e) => ({ ...e }));
  }

  async append(entry: OutboxEntry): Promise<void> {
    this.entries.set(entry.seq, { ...entry });
  }

  async remove(seq: number): Promise<void> {
    this.entries.delete(seq);
  }

  get size(): number {
    return this.entries.size;
  }
}
