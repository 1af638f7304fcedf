import type { Writable } from 'node:stream';

/** Where a command writes; the process streams, or buffers in a test. */
export interface CliIo {
  stdout: Pick<Writable, 'write'>;
  stderr: Pick<Writable, 'write'>;
}

/** Exit codes: 0 done, 1 failed while working, 2 bad input (usage, flags, config). */
export const EXIT = { ok: 0, failed: 1, badInput: 2 } as const;

/** An expected failure: the user sees `podfleet-agent: <message>` and the exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.badInput,
  ) {
    super(message);
  }
}

/** Resolves when `signal` aborts (SIGINT/SIGTERM in the real process). */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}
