/**
 * Collects items and hands them to `flush` in batches: when `maxItems` are waiting or `maxDelayMs`
 * after the first one arrived, whichever comes first. One flush runs at a time, so the store sees
 * batches in arrival order. Each item's `settled` callback runs after the batch holding it was
 * flushed (with the error, if the flush failed), which is when an MQTT message may be acknowledged.
 */
export class Batcher<T> {
  private waiting: { item: T; settled: (error?: Error) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly flush: (items: T[]) => Promise<void>,
    private readonly maxItems = 1000,
    private readonly maxDelayMs = 50,
  ) {}

  add(item: T, settled: (error?: Error) => void = () => undefined): void {
    if (this.closed) {
      settled(new Error('batcher closed'));
      return;
    }
    this.waiting.push({ item, settled });
    if (this.waiting.length >= this.maxItems) this.schedule(0);
    else if (!this.timer) this.schedule(this.maxDelayMs);
  }

  /** Items not yet handed to a flush. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Flushes what is waiting and every flush in progress. */
  async drain(): Promise<void> {
    if (this.waiting.length > 0) this.schedule(0);
    await this.running;
    if (this.waiting.length > 0) await this.drain();
  }

  /** Refuses new items, then drains. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    if (delayMs === 0) {
      this.timer = undefined;
      this.running = this.running.then(() => this.flushWaiting());
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.running.then(() => this.flushWaiting());
    }, delayMs);
  }

  private async flushWaiting(): Promise<void> {
    if (this.waiting.length === 0) return;
    const batch = this.waiting.splice(0, this.maxItems);
    try {
      await this.flush(batch.map((entry) => entry.item));
      for (const entry of batch) entry.settled();
    } catch (error) {
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const entry of batch) entry.settled(failure);
    }
    if (this.waiting.length >= this.maxItems) await this.flushWaiting();
  }
}
