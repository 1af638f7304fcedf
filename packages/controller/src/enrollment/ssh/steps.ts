/** A step failed: its name and why, and what was undone after it. */
export class EnrollFailed extends Error {
  constructor(
    readonly step: string,
    readonly reason: string,
    readonly undone: string[],
    readonly undoProblems: string[],
  ) {
    const tail = [
      undone.length > 0 ? `undone: ${undone.join(', ')}` : 'nothing to undo',
      ...undoProblems.map((problem) => `UNDO FAILED: ${problem}`),
    ].join('; ');
    super(`step ${step} failed: ${reason} (${tail})`);
  }
}

interface Undo {
  what: string;
  run: () => Promise<void>;
}

/**
 * Runs enrollment's steps in order, printing each; every step that changes something registers
 * how to take it back. A failing step undoes, newest first, everything registered before it, so
 * the device (and the controller) are left as they were.
 */
export class StepRunner {
  private readonly undos: Undo[] = [];
  readonly timings: { step: string; ms: number }[] = [];
  private index = 0;

  constructor(
    private readonly total: number,
    private readonly print: (line: string) => void,
    /** Aborted (Ctrl-C): the next step fails as interrupted, and what was done is undone. */
    private readonly signal?: AbortSignal,
  ) {}

  /** Runs a step; `done` turns its result into the line printed after it. */
  async step<T>(name: string, what: string, work: () => Promise<T>, done: (t: T) => string) {
    this.index += 1;
    const label = `[${this.index}/${this.total}] ${name}`;
    this.print(`${label}: ${what}`);
    const started = Date.now();
    try {
      if (this.signal?.aborted) throw new Error('interrupted');
      const result = await work();
      this.timings.push({ step: name, ms: Date.now() - started });
      this.print(`${' '.repeat(label.length)}  ${done(result)}`);
      return result;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.print(`${' '.repeat(label.length)}  FAILED: ${reason}`);
      const { undone, problems } = await this.rollback();
      throw new EnrollFailed(name, reason, undone, problems);
    }
  }

  /** Registers how to take back what the current step just did. */
  onUndo(what: string, run: () => Promise<void>): void {
    this.undos.push({ what, run });
  }

  private async rollback(): Promise<{ undone: string[]; problems: string[] }> {
    const undone: string[] = [];
    const problems: string[] = [];
    for (const undo of this.undos.splice(0).reverse()) {
      try {
        await undo.run();
        undone.push(undo.what);
        this.print(`  undo: ${undo.what}`);
      } catch (error) {
        const problem = `${undo.what}: ${error instanceof Error ? error.message : String(error)}`;
        problems.push(problem);
        this.print(`  undo FAILED: ${problem}`);
      }
    }
    return { undone, problems };
  }
}
