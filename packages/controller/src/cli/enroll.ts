import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { DeviceDetailView } from '../devices/schemas.js';
import type { IssuedCredentials } from '../enrollment/ssh/agent-files.js';
import type { EnrollmentController, EnrollSshOptions } from '../enrollment/ssh/enroll-ssh.js';
import { parseMinFree } from '../enrollment/ssh/min-free.js';
import { clientFor, withConnection, type ApiClient, type ConnectionFlags } from './api-client.js';
import { commandGroup } from './command-group.js';
import { parseLabelList } from './devices.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { visible } from './terminal-text.js';

interface EnrollFlags extends ConnectionFlags {
  port: number;
  identity?: string;
  device?: string;
  group?: string;
  labels?: Record<string, string>;
  hostKey?: string;
  acceptNewHostKey?: boolean;
  knownHosts?: string;
  broker?: string;
  brokerCa?: string;
  minFree?: Record<string, number>;
  timeout: number;
  reissue?: boolean;
  agentBundle?: string;
  json?: boolean;
}

const DEFAULT_MIN_FREE = '/var=500M,/opt=20M';

export function registerEnroll(program: Command, io: CliIo): void {
  const enroll = commandGroup(program, 'enroll', 'enroll devices into the fleet', io);
  withConnection(
    enroll
      .command('ssh')
      .argument('<target>', 'USER@HOST of the device (root, or a user with passwordless sudo)')
      .description(
        'install the agent on a device over SSH: check it, issue its identity, start podfleet-agent.service, wait until it is online (admin token)',
      )
      .option('--port <port>', 'SSH port', parsePort, 22)
      .option('--identity <key>', 'private key file (default: SSH_AUTH_SOCK, then ~/.ssh/id_*)')
      .option('--known-hosts <file>', 'known_hosts to check and record in (default ~/.ssh/known_hosts)')
      .option('--host-key <SHA256:...>', "the device's host key fingerprint (instead of known_hosts)", parseFingerprint)
      .option('--accept-new-host-key', 'trust a host key known_hosts has no entry for, and record it (never a changed one)')
      .option('--device <id>', "the device's id (default: its hostname)")
      .option('--group <group>', 'a group the device joins')
      .option('--labels <k=v,...>', "the device's labels", parseLabelList)
      .option('--broker <url>', 'the MQTT broker as the device reaches it (env PODFLEET_DEVICE_BROKER_URL)')
      .option('--broker-ca <file>', "CA certificate of an mqtts:// broker, copied to the device")
      .option('--min-free <path=size,...>', `free space the device needs (default ${DEFAULT_MIN_FREE})`, parseMinFreeFlag)
      .option('--timeout <seconds>', 'how long to wait for the device to come online', parseSeconds, 120)
      .option('--reissue', 'the device exists on the controller: issue it new credentials')
      .option('--agent-bundle <file>', 'a bundled agent (default: built from this checkout)')
      .option('--json', 'print the result as JSON (progress goes to standard error)'),
  ) // prettier-ignore
    .addHelpText(
      'after',
      `
Steps: connect (host key checked) → check (systemd running, podman ≥ 3.4, node ≥ 20, free disk,
no agent installed) → identity (issued by the controller) → install (/opt/podfleet/agent) →
config (/etc/podfleet/agent.yaml) → unit (podfleet-agent.service) → start → online.
A failing step undoes everything before it, on the device and on the controller.

Example:
  podfleet enroll ssh root@10.0.0.17 --broker mqtts://broker.example:8883 \\
    --host-key SHA256:n1Xh3kXbW3ZxY3qO7cGx1gT0y6gQm0bq6m1S8mCzq5A --group berlin --labels site=berlin`,
    )
    .action(async (targetText: string, flags: EnrollFlags) => {
      const target = parseTarget(targetText, flags.port);
      const brokerUrl = flags.broker ?? process.env.PODFLEET_DEVICE_BROKER_URL;
      if (!brokerUrl) {
        throw new CliError(['--broker: the broker URL the device connects to is required']);
      }
      if (flags.hostKey && flags.acceptNewHostKey) {
        throw new CliError(['--host-key and --accept-new-host-key: give one or neither']);
      }
      // ssh2 and the agent bundle load here: other commands and --help start without them.
      const [{ bundleAt, repoAgentBundle }, { enrollSsh }, { EnrollFailed }] = await Promise.all([
        import('../enrollment/ssh/agent-bundle.js'),
        import('../enrollment/ssh/enroll-ssh.js'),
        import('../enrollment/ssh/steps.js'),
      ]);
      const api = await clientFor(flags);
      const interrupt = new AbortController();
      const options: EnrollSshOptions = {
        ...target,
        ...(await credentialsFor(flags)),
        hostKey: {
          knownHostsFile: flags.knownHosts ?? join(homedir(), '.ssh', 'known_hosts'),
          ...(flags.hostKey ? { pinned: flags.hostKey } : {}),
          acceptNew: flags.acceptNewHostKey === true,
        },
        ...(flags.device ? { device: flags.device } : {}),
        labels: flags.labels ?? {},
        ...(flags.group ? { group: flags.group } : {}),
        reissue: flags.reissue === true,
        brokerUrl,
        ...(flags.brokerCa
          ? { brokerCa: (await readFlagFile(flags.brokerCa, '--broker-ca')).toString('utf8') }
          : {}),
        minFree: flags.minFree ?? parseMinFree(DEFAULT_MIN_FREE),
        onlineTimeoutMs: flags.timeout * 1000,
        bundle: flags.agentBundle ? () => bundleAt(flags.agentBundle!) : repoAgentBundle,
        controller: controllerApi(api),
        print: (line) => (flags.json ? io.stderr : io.stdout).write(`${visible(line, 'tabs')}\n`),
        signal: interrupt.signal,
      };
      // Ctrl-C (or SIGTERM) ends the enrollment at the next step boundary and undoes it.
      const onSignal = () => {
        io.stderr.write('podfleet: interrupted: undoing what was done (again to quit at once)\n');
        interrupt.abort();
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const result = await enrollSsh(options);
        if (flags.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else io.stdout.write(`enrolled ${result.device} (${result.target})\n`);
      } catch (error) {
        if (error instanceof EnrollFailed) throw new CliError([error.message], EXIT.failed);
        throw error;
      } finally {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      }
    });
}

/** The controller's side of an enrollment, over its API. */
export function controllerApi(api: ApiClient): EnrollmentController {
  const path = (id: string) => `/v1/devices/${encodeURIComponent(id)}`;
  return {
    issueIdentity: (id, body) =>
      api.request<{ credentials: IssuedCredentials; created: boolean }>(
        'POST',
        `${path(id)}/identity`,
        body,
      ),
    deleteDevice: async (id) => {
      await api.request('DELETE', path(id));
    },
    isOnline: async (id) =>
      (await api.request<{ online: DeviceDetailView['online'] }>('GET', path(id))).online,
  };
}

/** --identity, else the agent (SSH_AUTH_SOCK), else the first default key ssh(1) would try. */
async function credentialsFor(
  flags: EnrollFlags,
): Promise<{ privateKey?: Buffer; agentSocket?: string }> {
  if (flags.identity) return { privateKey: await readFlagFile(flags.identity, '--identity') };
  const agentSocket = process.env.SSH_AUTH_SOCK;
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const key = await readFile(join(homedir(), '.ssh', name)).catch(() => undefined);
    if (key) return { privateKey: key, ...(agentSocket ? { agentSocket } : {}) };
  }
  if (agentSocket) return { agentSocket };
  throw new CliError(['no SSH key: pass --identity KEY, or run an ssh-agent (SSH_AUTH_SOCK)']);
}

function parseTarget(text: string, port: number) {
  const match = /^([A-Za-z0-9._][A-Za-z0-9._-]*)@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$/.exec(text);
  if (!match) throw new CliError([`target: not USER@HOST: ${JSON.stringify(text)}`]);
  return { user: match[1]!, host: match[2]!.replace(/^\[|\]$/g, ''), port };
}

async function readFlagFile(path: string, flag: string): Promise<Buffer> {
  return readFile(path).catch((error: NodeJS.ErrnoException) => {
    throw new CliError([`${flag}: cannot read ${path} (${error.code})`]);
  });
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new InvalidArgumentError('must be a port number (1-65535)');
  }
  return port;
}

function parseSeconds(text: string): number {
  const seconds = Number(text.replace(/s$/, ''));
  if (!Number.isFinite(seconds) || seconds <= 0)
    throw new InvalidArgumentError('must be seconds > 0');
  return seconds;
}

function parseFingerprint(text: string): string {
  // ssh-keygen -lf prints SHA256: and 43 characters of unpadded base64.
  if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(text)) {
    throw new InvalidArgumentError('must be SHA256:… as ssh-keygen -lf prints it');
  }
  return text;
}

function parseMinFreeFlag(text: string): Record<string, number> {
  try {
    return parseMinFree(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}
