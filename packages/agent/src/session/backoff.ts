export interface BackoffOptions {
  /** The first delay's upper bound, in milliseconds. */
  baseMs: number;
  /** No delay is longer than this. */
  capMs: number;
  /** A number in [0, 1); Math.random unless a test fixes it. */
  random?: () => number;
}

/**
 * Reconnect delays that double per failed attempt up to a cap, each drawn from the upper half of
 * its range ("equal jitter"): a fleet that lost its broker at the same instant does not come back
 * at the same instant, and no device retries in a tight loop.
 */
export class ReconnectBackoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    this.random = options.random ?? Math.random;
  }

  /** The delay before the next attempt. */
  next(): number {
    const ceiling = Math.min(this.options.capMs, this.options.baseMs * 2 ** this.attempt);
    if (ceiling < this.options.capMs) this.attempt++;
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  /** After a successful connection the next failure starts from the base again. */
  reset(): void {
    this.attempt = 0;
  }
}
