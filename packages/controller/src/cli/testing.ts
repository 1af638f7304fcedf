import { Readable } from 'node:stream';
import { runCli } from './main.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with `stdin` as standard input and captures what it prints. */
export async function runCliCaptured(argv: string[], stdin = ''): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (chunk: string | Uint8Array) => ((stdout += String(chunk)), true) },
    stderr: { write: (chunk: string | Uint8Array) => ((stderr += String(chunk)), true) },
    stdin: Readable.from([stdin]),
  });
  return { code, stdout, stderr };
}
