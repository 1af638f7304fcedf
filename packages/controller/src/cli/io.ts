import type { Readable } from 'node:stream';

/** Where a command reads and writes; the real process streams, or buffers in a test. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  stdin: Readable;
  /** Set when standard output is a terminal: clears it and shows `screen` (terminal-text.ts). */
  redraw?: (screen: string) => void;
}

/** Exit codes: 0 done, 1 failed while working, 2 bad input (usage, flags, files, specs). */
export const EXIT = { ok: 0, failed: 1, badInput: 2 } as const;

/** An expected failure: the user sees `podfleet: <line>` for each line, and the exit code. */
export class CliError extends Error {
  constructor(
    readonly lines: string[],
    readonly exitCode: number = EXIT.badInput,
  ) {
    super(lines.join('\n'));
  }
}

export async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
