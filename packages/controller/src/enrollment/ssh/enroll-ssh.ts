import { DeviceId } from '@podfleet/shared';
import {
  AGENT_DIR,
  AGENT_UNIT,
  AGENT_ENTRY,
  agentFiles,
  CA_PATH,
  CONFIG_DIR,
  CONFIG_PATH,
  PASSWORD_PATH,
  STATE_DIR,
  UNIT_PATH,
  type IssuedCredentials,
} from './agent-files.js';
import { formatBytes, inspectDevice, type DeviceFacts, type DeviceRun } from './device-checks.js';
import { prepareHostKeyCheck, type HostKeyPolicy, type HostKeyTrust } from './host-key-check.js';
import { connectSsh, type RemoteShell } from './ssh-connection.js';
import { StepRunner } from './steps.js';

/** What enrollment asks of the controller (over its API, with an admin token). */
export interface EnrollmentController {
  /** POST /v1/devices/:id/identity */
  issueIdentity(
    id: string,
    body: { labels: Record<string, string>; group?: string; reissue: boolean },
  ): Promise<{ credentials: IssuedCredentials; created: boolean }>;
  /** DELETE /v1/devices/:id: the device and its credentials go. */
  deleteDevice(id: string): Promise<void>;
  /** Whether the controller sees the device online (GET /v1/devices/:id). */
  isOnline(id: string): Promise<boolean>;
}

/** The bundled agent to install, and its unit (packages/agent/scripts/bundle.mjs). */
export interface AgentBundle {
  path: string;
  sha256: string;
  bytes: number;
  content: Buffer;
  /** podfleet-agent.service as renderAgentUnit renders it for AGENT_ENTRY. */
  unit: string;
}

export interface EnrollSshOptions {
  user: string;
  host: string;
  port: number;
  privateKey?: Buffer;
  agentSocket?: string;
  hostKey: HostKeyPolicy;
  /** The device id; the device's hostname when absent. */
  device?: string;
  labels: Record<string, string>;
  group?: string;
  reissue: boolean;
  /** The broker as the device reaches it. */
  brokerUrl: string;
  /** A CA certificate (PEM) for an mqtts:// broker with a private CA, copied to the device. */
  brokerCa?: string;
  minFree: Record<string, number>;
  onlineTimeoutMs: number;
  bundle: () => Promise<AgentBundle>;
  controller: EnrollmentController;
  print: (line: string) => void;
  /** Interrupts the enrollment between steps (and the wait for online); what was done is undone. */
  signal?: AbortSignal;
}

export interface EnrollSshResult {
  device: string;
  target: string;
  hostKey: { type: string; fingerprint: string; trust: HostKeyTrust; where: string };
  facts: DeviceFacts;
  identity: { created: boolean; issued: string[] };
  agent: { path: string; sha256: string; bytes: number };
  unit: string;
  online: true;
  steps: { step: string; ms: number }[];
}

const STEPS = 8;

/**
 * `podfleet enroll ssh`: connect (host key checked), check the device, issue its identity on the
 * controller, install the bundled agent, write its config, install its unit, start it, and wait
 * until the controller sees it online with the unit active. A failing step undoes what the steps
 * before it did, newest first: the unit stopped and disabled, the files removed, the device
 * deleted on the controller (which revokes its credentials).
 */
export async function enrollSsh(options: EnrollSshOptions): Promise<EnrollSshResult> {
  const steps = new StepRunner(STEPS, options.print, options.signal);
  const target = `${options.user}@${options.host}:${options.port}`;
  let shell: RemoteShell | undefined;
  try {
    const connected = await steps.step(
      'connect',
      target,
      async () => {
        const prepared = await prepareHostKeyCheck(options.hostKey, options.host, options.port);
        const session = await connectSsh(
          {
            host: options.host,
            port: options.port,
            username: options.user,
            ...(options.privateKey ? { privateKey: options.privateKey } : {}),
            ...(options.agentSocket ? { agent: options.agentSocket } : {}),
            ...(prepared.algorithms ? { hostKeyAlgorithms: prepared.algorithms } : {}),
          },
          prepared.check,
        );
        shell = session.shell;
        const settled = await prepared.settle(session.hostKey);
        const uid = (await session.shell.run(['id', '-u'])).stdout.trim();
        return { hostKey: { ...session.hostKey, ...settled }, root: uid === '0' };
      },
      ({ hostKey, root }) =>
        `host key ${hostKey.type} ${hostKey.fingerprint} (${hostKey.trust}: ${hostKey.where})${root ? '' : '; commands through sudo -n'}`,
    );
    const remote = shell!;
    // Not root: every command through sudo, which must not ask for a password.
    const run: DeviceRun = (argv, input) =>
      remote.run(connected.root ? argv : ['sudo', '-n', ...argv], input);
    const must = async (argv: readonly string[], input?: string | Buffer) => {
      const result = await run(argv, input);
      if (result.code !== 0) {
        const said = (result.stderr.trim() || result.stdout.trim())
          .split('\n')
          .slice(-2)
          .join(' | ');
        throw new Error(`\`${argv.join(' ')}\` exited ${result.code}${said ? `: ${said}` : ''}`);
      }
      return result.stdout;
    };

    const facts = await steps.step(
      'check',
      'systemd, podman, architecture, node, free disk, no agent installed',
      () => inspectDevice(run, { minFree: options.minFree }),
      (f) =>
        `systemd ${f.systemd.version} (${f.systemd.state}), podman ${f.podman}, ${f.arch}, node ${f.node.version} (${f.node.path}), free ${Object.entries(
          f.free,
        )
          .map(([path, bytes]) => `${path} ${formatBytes(bytes)}`)
          .join(', ')}`,
    );

    const device = options.device ?? facts.hostname;
    const identity = await steps.step(
      'identity',
      `device ${device} on the controller`,
      async () => {
        const valid = DeviceId.safeParse(device);
        if (!valid.success) {
          throw new Error(
            `${JSON.stringify(device)} is not a valid device id${options.device ? '' : ' (the hostname): pass --device ID'}`,
          );
        }
        const issued = await options.controller.issueIdentity(device, {
          labels: options.labels,
          ...(options.group !== undefined ? { group: options.group } : {}),
          reissue: options.reissue,
        });
        if (issued.created) {
          steps.onUndo(`deleted device ${device} on the controller (credentials revoked)`, () =>
            options.controller.deleteDevice(device),
          );
        }
        // Checked before anything reaches the device: a config the agent would refuse.
        const files = agentFiles(device, options.brokerUrl, issued.credentials, !!options.brokerCa);
        return { ...issued, files };
      },
      (i) =>
        `${i.created ? 'created' : 'reissued'}; credentials: ${Object.keys(i.credentials).join(', ') || 'none'}`,
    );

    const bundle = await steps.step(
      'install',
      `agent → ${AGENT_ENTRY}`,
      async () => {
        const bundle = await options.bundle();
        const madeOpt = !(await exists(run, '/opt/podfleet'));
        steps.onUndo(`removed ${madeOpt ? '/opt/podfleet' : AGENT_DIR}`, async () => {
          await must(['rm', '-rf', madeOpt ? '/opt/podfleet' : AGENT_DIR]);
        });
        await writeRemote(must, AGENT_ENTRY, bundle.content, '0644');
        const sum = (await must(['sha256sum', AGENT_ENTRY])).split(/\s+/)[0];
        if (sum !== bundle.sha256)
          throw new Error(`${AGENT_ENTRY}: sha256 ${sum}, sent ${bundle.sha256}`);
        // The device's node loads the bundle: a syntax or runtime gap shows here, not in the unit.
        await must(['env', 'PATH=/usr/local/bin:/usr/bin:/bin', 'node', AGENT_ENTRY, '--help']);
        return bundle;
      },
      (b) => `${formatBytes(b.bytes)}, sha256 ${b.sha256.slice(0, 16)}…, runs on the device's node`,
    );

    await steps.step(
      'config',
      `${CONFIG_PATH} (identity of ${device})`,
      async () => {
        const madeDir = !(await exists(run, CONFIG_DIR));
        const written = [CONFIG_PATH];
        if (identity.files.password !== undefined) written.push(PASSWORD_PATH);
        if (options.brokerCa !== undefined) written.push(CA_PATH);
        steps.onUndo(`removed ${madeDir ? CONFIG_DIR : written.join(', ')}`, async () => {
          await must(['rm', '-rf', ...(madeDir ? [CONFIG_DIR] : written)]);
        });
        await writeRemote(must, CONFIG_PATH, identity.files.config, '0600');
        if (identity.files.password !== undefined) {
          await writeRemote(must, PASSWORD_PATH, identity.files.password, '0600');
        }
        if (options.brokerCa !== undefined)
          await writeRemote(must, CA_PATH, options.brokerCa, '0644');
        return written;
      },
      (written) => `wrote ${written.join(', ')} (mode 0600)`,
    );

    await steps.step(
      'unit',
      UNIT_PATH,
      async () => {
        steps.onUndo(`removed ${UNIT_PATH}`, async () => {
          await must(['rm', '-f', UNIT_PATH]);
          await must(['systemctl', 'daemon-reload']);
        });
        await writeRemote(must, UNIT_PATH, bundle.unit, '0644');
        await must(['systemctl', 'daemon-reload']);
      },
      () => 'installed, systemd reloaded',
    );

    await steps.step(
      'start',
      `systemctl enable --now ${AGENT_UNIT}`,
      async () => {
        steps.onUndo(`stopped and disabled ${AGENT_UNIT}, removed ${STATE_DIR}`, async () => {
          await must(['systemctl', 'disable', '--now', AGENT_UNIT]);
          await run(['systemctl', 'reset-failed', AGENT_UNIT]);
          await must(['rm', '-rf', STATE_DIR]);
        });
        // --no-block: READY=1 comes once the agent took its manifest; the next step waits for it.
        await must(['systemctl', 'enable', '--now', '--no-block', AGENT_UNIT]);
      },
      () => 'enabled (starts at boot), start queued',
    );

    await steps.step(
      'online',
      `until the controller sees ${device} online (at most ${options.onlineTimeoutMs / 1000}s)`,
      () => waitOnline(run, options.controller, device, options.onlineTimeoutMs, options.signal),
      (ms) => `online after ${(ms / 1000).toFixed(1)}s, ${AGENT_UNIT} active`,
    );

    return {
      device,
      target,
      hostKey: {
        type: connected.hostKey.type,
        fingerprint: connected.hostKey.fingerprint,
        trust: connected.hostKey.trust,
        where: connected.hostKey.where,
      },
      facts,
      identity: { created: identity.created, issued: Object.keys(identity.credentials) },
      agent: { path: AGENT_ENTRY, sha256: bundle.sha256, bytes: bundle.bytes },
      unit: AGENT_UNIT,
      online: true,
      steps: steps.timings,
    };
  } finally {
    shell?.close();
  }
}

/**
 * Until the controller has the device online and its unit is active (READY=1 given); a unit
 * that failed ends the wait at once. The failure names the unit's state and its last lines.
 */
async function waitOnline(
  run: DeviceRun,
  controller: EnrollmentController,
  device: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<number> {
  const started = Date.now();
  let unit = { active: '', sub: '', status: '', restarts: '0' };
  for (;;) {
    const shown = await run([
      'systemctl', 'show', '-p', 'ActiveState,SubState,StatusText,NRestarts', AGENT_UNIT,
    ]); // prettier-ignore
    const props = Object.fromEntries(
      shown.stdout
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    unit = {
      active: props.ActiveState ?? '',
      sub: props.SubState ?? '',
      status: props.StatusText ?? '',
      restarts: props.NRestarts ?? '0',
    };
    if (signal?.aborted) throw new Error('interrupted');
    if (unit.active === 'failed') break;
    if (unit.active === 'active' && (await controller.isOnline(device)))
      return Date.now() - started;
    if (Date.now() - started > timeoutMs) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const journal = await run(['journalctl', '-u', AGENT_UNIT, '-n', '3', '-o', 'cat', '--no-pager']);
  const last = journalSummary(journal.stdout);
  const state = `${AGENT_UNIT} ${unit.active}/${unit.sub}${unit.status ? ` "${unit.status}"` : ''}, ${unit.restarts} restart(s)`;
  throw new Error(
    unit.active === 'failed'
      ? `${AGENT_UNIT} failed (${state}); journal: ${last || 'empty'}`
      : `not online within ${timeoutMs / 1000}s (${state}); journal: ${last || 'empty'}`,
  );
}

/** The agent logs pino JSON: its messages, each once, are what an operator needs to read. */
function journalSummary(text: string): string {
  const messages: string[] = [];
  for (const line of text.trim().split('\n').filter(Boolean)) {
    let message = line;
    try {
      const entry = JSON.parse(line) as { msg?: unknown };
      if (typeof entry.msg === 'string') message = entry.msg;
    } catch {
      // not JSON: the line as it is
    }
    if (!messages.includes(message)) messages.push(message);
  }
  return messages.join(' | ');
}

async function exists(run: DeviceRun, path: string): Promise<boolean> {
  return (await run(['test', '-e', path])).code === 0;
}

/** Writes a file on the device through a temporary name, so that it appears whole or not at all. */
async function writeRemote(
  must: (argv: readonly string[], input?: string | Buffer) => Promise<string>,
  path: string,
  content: string | Buffer,
  mode: string,
): Promise<void> {
  await must(
    [
      'sh', '-c',
      'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1.pf-new" && chmod "$2" "$1.pf-new" && mv -f "$1.pf-new" "$1"',
      'sh', path, mode,
    ],
    content,
  ); // prettier-ignore
}
