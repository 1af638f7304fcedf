import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// Each shell loads `podfleet completion SHELL` and completes through `podfleet complete -- …`,
// as an operator's shell would: podfleet on the PATH (the built dist/). Shells: scripts/test-env.sh.
const bin = fileURLToPath(new URL('../../bin/podfleet.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pf-completion-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'podfleet'), `#!/bin/sh\nexec '${process.execPath}' '${bin}' "$@"\n`);
chmodSync(join(dir, 'podfleet'), 0o755);
const env = { ...process.env, PATH: `${dir}:${process.env.PATH}` };

function shell(command: string, args: string[]): string {
  const run = spawnSync(command, args, { encoding: 'utf8', env, cwd: dir });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout;
}

/** What bash offers at the end of `line`, through the function `complete -p` names. */
function bashCompletes(line: string): string[] {
  const script = `
    source /usr/share/bash-completion/bash_completion
    source <(podfleet completion bash)
    handler=$(complete -p podfleet | sed -E 's/.* -F ([^ ]+) .*/\\1/')
    read -ra COMP_WORDS <<< "$LINE"
    [[ "$LINE" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)) COMP_LINE="$LINE" COMP_POINT=\${#LINE}
    "$handler" podfleet 2>/dev/null
    printf '%s\\n' "\${COMPREPLY[@]}"`;
  const run = spawnSync('bash', ['--norc', '--noprofile', '-c', script], {
    encoding: 'utf8',
    env: { ...env, LINE: line },
    cwd: dir,
  });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.split('\n').filter(Boolean).sort();
}

describe('podfleet completion', () => {
  it('bash: completes commands, subcommands and options', () => {
    expect(
      shell('bash', ['--norc', '-c', 'source <(podfleet completion bash); complete -p podfleet']),
    ).toMatch(/^complete -F \S+ podfleet$/m);
    expect(bashCompletes('podfleet dev')).toEqual(['devices']);
    expect(bashCompletes('podfleet rollout st')).toEqual(['start', 'status']);
    expect(bashCompletes('podfleet devices ')).toEqual(expect.arrayContaining(['add', 'ls']));
    expect(bashCompletes('podfleet devices ls --gr')).toEqual(['--group']);
    expect(bashCompletes('podfleet completion ')).toEqual(['bash', 'fish', 'powershell', 'zsh']);
  });

  it('zsh: offers subcommands with their descriptions', () => {
    // _describe and compdef are zsh's completion system; stand-ins print what it was given.
    const out = shell('zsh', [
      '-f',
      '-c',
      `compdef() { :; }
       _describe() { print -l -- "\${completions[@]}"; }
       source <(podfleet completion zsh)
       words=(podfleet rollout st); CURRENT=3; _podfleet`,
    ]);
    expect(
      out
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(':')[0]),
    ).toEqual(['start', 'status']);
  });

  it('fish: completes subcommands with their descriptions', () => {
    const out = shell('fish', [
      '--no-config',
      '-c',
      'podfleet completion fish | source; complete -C "podfleet rollout st"',
    ]);
    expect(
      out
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t')[0]),
    ).toEqual(['start', 'status']);
  });

  it('refuses a shell it has no script for, exit 2', () => {
    const run = spawnSync(process.execPath, [bin, 'completion', 'tcsh'], { encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      "podfleet: command-argument value 'tcsh' is invalid for argument 'shell'. Allowed choices are zsh, bash, fish, powershell.\n",
    );
  });
});
