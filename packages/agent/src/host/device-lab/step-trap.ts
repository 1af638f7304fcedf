import { existsSync } from 'node:fs';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeInDevice } from './device-agent.js';
import type { LabDevice } from './lab-device.js';

/**
 * Where a step trap is armed and says it was reached, in the device. /run is a tmpfs: a power cut
 * disarms it, so the device boots with nothing in the way.
 */
const TRAP_DIR = '/run/pf-trap';
const ARMED = `${TRAP_DIR}/armed`;
const REACHED = `${TRAP_DIR}/reached`;

/** The programs the agent runs by name, trapped in /usr/local/bin (before /usr/bin on PATH). */
const TRAPPED = ['podman', 'systemctl'] as const;

/**
 * A wrapper in front of the real program. Unless armed, or called from outside the agent's unit
 * (the test's own commands, the units' ExecStart=, which name /usr/bin/podman), it is the real
 * program (exec). Armed and matching — the call (`podman pull -q IMAGE`) against a shell pattern —
 * it says so in `reached` and then never returns: before the real command runs, or after it did.
 * The agent waits there, in the middle of its step, until the test pulls the plug.
 */
function wrapper(program: (typeof TRAPPED)[number]): string {
  return `#!/bin/sh
# podfleet device lab: a step trap (step-trap.ts)
real=/usr/bin/${program}
if [ -r ${ARMED} ] && grep -q '/podfleet-agent\\.service$' /proc/self/cgroup; then
  { read -r when; read -r pattern; } < ${ARMED}
  case "${program} $*" in
    $pattern)
      if [ "$when" = after ]; then "$real" "$@"; fi
      echo "${program} $*" > ${REACHED}
      exec sleep infinity ;;
  esac
fi
exec "$real" "$@"
`;
}

/** Puts the wrappers in the device (they stay across reboots: the root is persistent). */
export async function installStepTraps(device: LabDevice): Promise<void> {
  for (const program of TRAPPED) {
    const path = `/usr/local/bin/${program}`;
    await writeInDevice(device, path, wrapper(program));
    await chmod(join(device.root, path), 0o755);
  }
}

export interface StepTrap {
  /** The call to stop at, as a shell pattern over `program arg…`: `podman pull *`. */
  call: string;
  /** Stop before the real command runs, or once it returned. */
  when: 'before' | 'after';
}

/** Arms the trap: the agent's next matching call stops there. */
export async function armStepTrap(device: LabDevice, { call, when }: StepTrap): Promise<void> {
  await device.exec(['mkdir', '-p', TRAP_DIR]);
  await rm(join(device.root, REACHED), { force: true });
  await writeFile(join(device.root, ARMED), `${when}\n${call}\n`);
}

/** Waits until the agent stopped at the trap; the call it stopped at. */
export async function untilTrapReached(device: LabDevice, timeoutMs = 60_000): Promise<string> {
  const path = join(device.root, REACHED);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (existsSync(path)) return (await readFile(path, 'utf8')).trim();
    if (Date.now() > deadline) {
      const armed = await readFile(join(device.root, ARMED), 'utf8').catch(() => '');
      throw new Error(`step trap not reached in ${timeoutMs} ms: ${armed.replace(/\n/g, ' ')}`);
    }
    await sleep(25);
  }
}
