import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Runs a program with an argv array (no shell in between) and collects what it prints. */
export function run(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      }),
    );
  });
}

/** Like run, but a non-zero exit becomes a one-line error naming the command and its last words. */
export async function runOk(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const result = await run(program, args, options);
  if (result.code !== 0) throw new Error(`${describeCommand(program, args)}: ${failure(result)}`);
  return result;
}

/** The last line a failed command printed, which is where Podman, apt and systemd say why. */
export function failure(result: CommandResult): string {
  const lines = `${result.stdout}\n${result.stderr}`.split('\n').filter((l) => l.trim() !== '');
  return `exit ${result.code}${lines.length > 0 ? `, ${lines.at(-1)!.trim()}` : ''}`;
}

function describeCommand(program: string, args: readonly string[]): string {
  const shown = [program, ...args].join(' ');
  return shown.length > 120 ? `${shown.slice(0, 117)}...` : shown;
}
