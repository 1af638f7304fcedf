import { Command, CommanderError } from 'commander';
import { AGENT_VERSION } from '../runtime/agent-version.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { registerRun } from './run-command.js';
import { registerSim } from './sim-command.js';

/** Builds the `podfleet-agent` program; `signal` ends `run` and `sim`. */
export function buildProgram(io: CliIo, signal: AbortSignal): Command {
  const program = new Command('podfleet-agent')
    .description('podfleet-agent: converges this device to its manifest with systemd and Podman')
    .version(AGENT_VERSION, '-V, --version', 'print the agent version')
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      // Commander's own errors become the one-line form in runCli.
      writeErr: () => undefined,
    });
  registerRun(program, io, signal);
  registerSim(program, io, signal);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs one command line and returns the exit code; nothing here calls process.exit. */
export async function runCli(
  argv: string[],
  io: CliIo,
  signal: AbortSignal = new AbortController().signal,
): Promise<number> {
  const program = buildProgram(io, signal);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr.write(`podfleet-agent: ${error.message}\n`);
      return error.exitCode;
    }
    if (error instanceof CommanderError) {
      if (['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code)) {
        return EXIT.ok;
      }
      io.stderr.write(`podfleet-agent: ${error.message.replace(/^error: /, '')}\n`);
      return EXIT.badInput;
    }
    io.stderr.write(`podfleet-agent: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failed;
  }
}
