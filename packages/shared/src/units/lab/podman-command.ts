// Reads a `podman run` argv (ExecStart split by systemd's rules) into options, image and command,
// so that two spellings of the same command compare equal: Quadlet writes `--env x`, `--publish`,
// `--label` where our units (and Podman's generate) write `-e x`, `-p`; order differs too.

/** Short options Podman accepts as aliases of long ones (podman-run(1)). */
const ALIASES: Record<string, string> = {
  '-e': '--env',
  '-p': '--publish',
  '-v': '--volume',
  '-l': '--label',
  '-d': '--detach',
  '-t': '--tty',
  '-i': '--interactive',
  '-u': '--user',
  '-w': '--workdir',
  '-h': '--hostname',
};

/** podman run options that take a value (podman-run(1)); boolean flags take none. */
const VALUE_OPTIONS = new Set([
  '--name', '--cidfile', '--cgroups', '--log-driver', '--log-opt', '--stop-timeout', '--stop-signal',
  '--sdnotify', '--systemd', '--env', '--env-file', '--publish', '--volume', '--mount', '--label',
  '--health-cmd', '--health-interval', '--health-retries', '--health-start-period',
  '--health-timeout', '--health-on-failure', '--network', '--pull', '--user', '--workdir',
  '--hostname', '--entrypoint', '--ulimit', '--pod', '--restart', '--tmpfs', '--device',
]); // prettier-ignore

const BOOLEAN_OPTIONS = new Set([
  '--rm',
  '--detach',
  '--replace',
  '--init',
  '--tty',
  '--interactive',
]);

export interface PodmanRun {
  /** `--flag=value` or `--flag`, long names, in the order given. */
  options: string[];
  image: string;
  command: string[];
}

/** Splits `[podman, run, …options, image, …command]`; an option missing from the tables throws. */
export function parsePodmanRun(argv: readonly string[]): PodmanRun {
  if (argv[1] !== 'run') throw new Error(`not a podman run command: ${argv.join(' ')}`);
  const options: string[] = [];
  let i = 2;
  for (; i < argv.length && argv[i]!.startsWith('-'); i++) {
    const word = argv[i]!;
    const eq = word.startsWith('--') ? word.indexOf('=') : -1;
    const given = eq > 0 ? word.slice(0, eq) : word;
    const flag = ALIASES[given] ?? given;
    if (VALUE_OPTIONS.has(flag)) {
      const value = eq > 0 ? word.slice(eq + 1) : argv[++i];
      if (value === undefined) throw new Error(`podman option ${word} lacks its value`);
      options.push(`${flag}=${value}`);
    } else if (BOOLEAN_OPTIONS.has(flag) && eq < 0) {
      options.push(flag);
    } else {
      throw new Error(`podman option ${word} is not in the option table of podman-command.ts`);
    }
  }
  const image = argv[i];
  if (image === undefined) throw new Error(`no image in: ${argv.join(' ')}`);
  return { options, image, command: argv.slice(i + 1) };
}

/**
 * The options that come from the spec: without what each unit style adds around them (cidfile,
 * cgroups mode, --rm, -d, --replace) and without `--sdnotify=conmon`, Podman's default, which
 * Podman's units and Quadlet's spell out and our options leave implicit.
 */
export function specOptions(parsed: PodmanRun): string[] {
  return parsed.options.filter(
    (option) =>
      !/^--(cidfile|cgroups)=/.test(option) &&
      !['--rm', '--detach', '--replace', '--sdnotify=conmon'].includes(option),
  );
}
