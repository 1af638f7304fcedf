import { Command, CommanderError } from 'commander';
import { CliError, EXIT, type CliIo } from './io.js';
import { registerAssign } from './assign.js';
import { registerAudit } from './audit.js';
import { registerCompletion } from './completion.js';
import { registerDevices } from './devices.js';
import { registerEnroll } from './enroll.js';
import { registerEvents } from './events.js';
import { registerQuarantine } from './quarantine.js';
import { registerGroups } from './groups.js';
import { registerPin } from './pin.js';
import { registerPins } from './pins.js';
import { registerRender } from './render.js';
import { registerServices } from './services.js';
import { registerTokens } from './tokens.js';
import { registerKeys } from './keys.js';
import { registerMigrate } from './migrate.js';
import { registerRollout } from './rollout.js';
import { registerDeviceCommands } from './device-commands.js';
import { registerServe } from './serve.js';
import { terminalIo, visible } from './terminal-text.js';
import { PODFLEET_VERSION } from './version.js';

/**
 * Builds the `podfleet` program; each command registers itself. Only commander and the CLI's own
 * files load here: a command loads what it needs (the server, yaml, zod, ssh2) when it runs, so
 * that --help and the API commands start fast (startup is checked in cli.int.test.ts).
 */
export function buildProgram(io: CliIo): Command {
  const program = new Command('podfleet')
    .description('podfleet: run containerized services on fleets of Linux edge devices')
    .version(PODFLEET_VERSION, '-V, --version', 'print the podfleet version')
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      // Commander's own errors become our one-line form in runCli.
      writeErr: () => undefined,
    });
  registerRender(program, io);
  registerDevices(program, io);
  registerGroups(program, io);
  registerServices(program, io);
  registerAssign(program, io);
  registerPin(program, io);
  registerPins(program, io);
  registerTokens(program, io);
  registerEvents(program, io);
  registerAudit(program, io);
  registerQuarantine(program, io);
  registerRollout(program, io);
  registerDeviceCommands(program, io);
  registerServe(program, io);
  registerMigrate(program, io);
  registerKeys(program, io);
  registerEnroll(program, io);
  registerCompletion(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/**
 * Runs one command line and returns the exit code; nothing here calls process.exit. Everything
 * printed goes through terminalIo; an error is one line whatever its message holds (an API
 * message may quote what a device or a user sent).
 */
export async function runCli(argv: string[], raw: CliIo): Promise<number> {
  const io = terminalIo(raw);
  const program = buildProgram(io);
  const fail = (line: string) => io.stderr.write(`podfleet: ${visible(line)}\n`);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CliError) {
      for (const line of error.lines) fail(line);
      return error.exitCode;
    }
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
        return EXIT.ok;
      if (error.code === 'commander.help') return EXIT.ok;
      // Commander's own message may add a line (`(Did you mean …?)`); each gets the prefix.
      error.message
        .replace(/^error: /, '')
        .split('\n')
        .forEach(fail);
      return EXIT.badInput;
    }
    fail(error instanceof Error ? error.message : String(error));
    return EXIT.failed;
  }
}
