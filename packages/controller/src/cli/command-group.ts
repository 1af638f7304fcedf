import type { Command } from 'commander';
import type { CliIo } from './io.js';

/**
 * A command that only holds subcommands (`devices`, `groups`, …). Run alone it shows its help on
 * standard error, where Commander's own would be dropped (runCli prints errors itself); its
 * subcommands inherit the same output.
 */
export function commandGroup(
  program: Command,
  name: string,
  description: string,
  io: CliIo,
): Command {
  return program
    .command(name)
    .description(description)
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: () => undefined,
    });
}
