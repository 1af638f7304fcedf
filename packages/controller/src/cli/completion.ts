import type { Command } from 'commander';
import tab from '@bomb.sh/tab/commander';

/**
 * `podfleet completion bash|zsh|fish|powershell` prints a script for the shell; at each TAB the
 * script runs the hidden `podfleet complete -- WORDS…`, which answers from this command tree, so
 * a new command or option completes without a new script. @bomb.sh/tab writes both (with
 * console.log, not through io: what it prints is for the shell, never for an operator to read).
 * Registered after every other command: it reads the tree as it is then.
 */
export function registerCompletion(program: Command): void {
  tab(program, { completionCommandName: 'completion' });
  const completion = program.commands.find((command) => command.name() === 'completion')!;
  completion
    .description('print the shell completion script: bash, zsh, fish or powershell')
    .addHelpText(
      'after',
      `
Load it once per session, or from the shell's start-up file; podfleet must be on the PATH:
  bash  source <(podfleet completion bash)      (needs the bash-completion package)
  zsh   source <(podfleet completion zsh)       (after compinit)
  fish  podfleet completion fish > ~/.config/fish/completions/podfleet.fish`,
    );
}
