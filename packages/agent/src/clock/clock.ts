/** A scheduled callback that can be cancelled before it fires. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the agent and the in-memory host see it. Injected everywhere a wait or a timestamp is
 * needed, so that tests and the simulator can run minutes of systemd timing in no real time.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimer(ms: number, fire: () => void): Timer;
  sleep(ms: number): Promise<void>;
}

/** The machine's clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fire) {
    const handle = setTimeout(fire, Math.max(0, ms));
    return { cancel: () => clearTimeout(handle) };
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

interface Scheduled {
  due: number;
  seq: number;
  fire: () => void;
  cancelled: boolean;
}

/** Lets every promise continuation that is already queued run (nothing here does real I/O). */
const flushMicrotasks = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A clock that moves only when told to. Timers fire in due order (ties in the order they were
 * set), each followed by the promise continuations it caused, so a run is deterministic.
 */
export class VirtualClock implements Clock {
  private current: number;
  private seq = 0;
  private queue: Scheduled[] = [];

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimer(ms: number, fire: () => void): Timer {
    const entry: Scheduled = {
      due: this.current + Math.max(0, ms),
      seq: this.seq++,
      fire,
      cancelled: false,
    };
    let index = this.queue.length;
    while (index > 0 && this.queue[index - 1]!.due > entry.due) index--;
    this.queue.splice(index, 0, entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(ms, resolve));
  }

  /** Number of timers still to fire. */
  pending(): number {
    return this.queue.filter((entry) => !entry.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const until = this.current + ms;
    for (;;) {
      await flushMicrotasks();
      const next = this.next();
      if (!next || next.due > until) break;
      this.fire(next);
    }
    this.current = until;
    await flushMicrotasks();
  }

  /**
   * Moves time forward exactly as far as `work` needs to settle, then returns its result. Throws
   * when `work` waits on something no timer will ever fire, or needs more than `limitMs`.
   */
  async run<T>(work: Promise<T>, limitMs = 86_400_000): Promise<T> {
    let outcome: { value: T } | { error: unknown } | undefined;
    work.then(
      (value) => (outcome = { value }),
      (error: unknown) => (outcome = { error }),
    );
    const until = this.current + limitMs;
    for (;;) {
      await flushMicrotasks();
      if (outcome) break;
      const next = this.next();
      if (!next) throw new Error('VirtualClock.run: the work waits on nothing the clock will fire');
      if (next.due > until) throw new Error(`VirtualClock.run: not done after ${limitMs} ms`);
      this.fire(next);
    }
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }

  private next(): Scheduled | undefined {
    while (this.queue[0]?.cancelled) this.queue.shift();
    return this.queue[0];
  }

  private fire(entry: Scheduled): void {
    this.queue.shift();
    this.current = Math.max(this.current, entry.due);
    entry.fire();
  }
}
