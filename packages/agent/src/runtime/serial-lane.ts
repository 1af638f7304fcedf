/**
 * Host work one job at a time, in the order asked: an apply, a drift repair, an auto-update and a
 * restart must never interleave their steps on the same units.
 */
export class SerialLane {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;

  run<T>(job: () => Promise<T>): Promise<T> {
    this.queued++;
    const result = this.tail.then(job);
    this.tail = result.then(
      () => void this.queued--,
      () => void this.queued--,
    );
    return result;
  }

  get busy(): boolean {
    return this.queued > 0;
  }

  /** Resolves once no job is queued or running (jobs queued meanwhile included). */
  async idle(): Promise<void> {
    while (this.queued > 0) await this.tail;
  }
}
