import { describe, expect, it, vi } from 'vitest';
import { Batcher } from './batcher.js';

describe('Batcher', () => {
  it('flushes when maxItems are waiting, in arrival order, one flush at a time', async () => {
    const batches: number[][] = [];
    let inFlight = 0;
    const batcher = new Batcher<number>(
      async (items) => {
        inFlight++;
        expect(inFlight).toBe(1);
        await new Promise((resolve) => setTimeout(resolve, 1));
        batches.push(items);
        inFlight--;
      },
      3,
      10_000,
    );
    for (let i = 0; i < 7; i++) batcher.add(i);
    await batcher.drain();
    expect(batches).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });

  it('flushes a partial batch after maxDelayMs', async () => {
    vi.useFakeTimers();
    try {
      const flush = vi.fn(async () => undefined);
      const batcher = new Batcher<string>(flush, 100, 50);
      batcher.add('a');
      batcher.add('b');
      await vi.advanceTimersByTimeAsync(49);
      expect(flush).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(flush).toHaveBeenCalledWith(['a', 'b']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('settles each item after its batch is stored, with the error when storing failed', async () => {
    let fail = true;
    const batcher = new Batcher<number>(
      async () => {
        if (fail) throw new Error('db down');
      },
      2,
      5,
    );
    const outcomes: (string | undefined)[] = [];
    batcher.add(1, (error) => outcomes.push(error?.message));
    batcher.add(2, (error) => outcomes.push(error?.message));
    await batcher.drain();
    fail = false;
    batcher.add(3, (error) => outcomes.push(error?.message ?? 'stored'));
    await batcher.drain();
    expect(outcomes).toEqual(['db down', 'db down', 'stored']);
  });

  it('refuses items after close, having flushed everything before', async () => {
    const stored: number[] = [];
    const batcher = new Batcher<number>(async (items) => void stored.push(...items), 100, 10_000);
    batcher.add(1);
    batcher.add(2);
    await batcher.close();
    expect(stored).toEqual([1, 2]);
    const refused: string[] = [];
    batcher.add(3, (error) => refused.push(error?.message ?? ''));
    expect(refused).toEqual(['batcher closed']);
    expect(batcher.pending).toBe(0);
  });
});
