import { READY_GRACE_MS } from '../runtime/agent-unit.js';

export const AGENT_UNIT = 'podfleet-agent.service';

/**
 * Where things are on a device. The install layout: the @podfleet/agent package as npm installs it
 * (bin/, dist/, node_modules/) in /opt/podfleet/agent, its config in /etc/podfleet, its state in
 * /var/lib/podfleet (StateDirectory=), node from PATH.
 */
export interface AgentUnitOptions {
  /** The agent's entry script. */
  entry?: string;
  /** The agent's config (AgentConfig YAML). */
  config?: string;
  /** systemd kills the agent when no WATCHDOG=1 came for this long; it sends one every half. */
  watchdogSec?: number;
  /** Wait before each restart. */
  restartSec?: number;
  /**
   * User scope (agent config `scope: user`): the account whose own service manager runs the
   * services. The agent runs as that account; without it, as root for system scope.
   */
  user?: AgentAccount;
}

/** A non-root account on the device, by name and uid (`id -u NAME`: the unit needs both). */
export interface AgentAccount {
  name: string;
  uid: number;
}

/**
 * Node flags the agent runs with. V8 grows its young generation to 16 MB a semi-space after the
 * first bursts of allocation and keeps it: 1 MB is plenty for an agent that allocates little
 * (issue #8: idle RSS under 60 MB). NODE_OPTIONS rather than ExecStart words, so that ExecStart
 * stays `node ENTRY …`.
 */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=1';

export const AGENT_UNIT_DEFAULTS: Required<Omit<AgentUnitOptions, 'user'>> = {
  entry: '/opt/podfleet/agent/bin/podfleet-agent.js',
  config: '/etc/podfleet/agent.yaml',
  watchdogSec: 30,
  restartSec: 5,
};

/**
 * podfleet-agent.service, the agent's own system unit (deploy/podfleet-agent.service is this with
 * the defaults). Keys are those systemd 252 (Debian 12) already knows, so that `systemd-analyze
 * verify` passes there and on 257.
 */
export function renderAgentUnit(options: AgentUnitOptions = {}): string {
  const { entry, config, watchdogSec, restartSec } = checked({
    ...AGENT_UNIT_DEFAULTS,
    ...options,
  });
  const user = options.user && checkedAccount(options.user);
  return `# podfleet-agent: converges this device to its manifest with systemd and Podman.
# Rendered by renderAgentUnit (packages/agent/src/install/agent-unit-file.ts).
[Unit]
Description=podfleet agent
Wants=network-online.target
After=network-online.target
${user ? userManagerOrder(user) : ''}# Never stop restarting it: the agent is the device's only way back to its controller.
StartLimitIntervalSec=0

[Service]
Type=notify
${user ? userService(user) : ROOT_NOTIFY}Environment=NODE_OPTIONS=${AGENT_NODE_OPTIONS}
ExecStart=/usr/bin/env node ${entry} run --config ${config}
SyslogIdentifier=podfleet-agent
# READY=1 follows the first reconcile, or comes ${READY_GRACE_MS / 1000}s after start without the broker.
TimeoutStartSec=${(3 * READY_GRACE_MS) / 1000}
WatchdogSec=${watchdogSec}
Restart=always
RestartSec=${restartSec}
# SIGTERM to the agent alone: a step it is running (podman, systemctl) may finish first.
KillMode=mixed
TimeoutStopSec=30
StateDirectory=podfleet
StateDirectoryMode=0700
${user ? USER_HARDENING : ROOT_HARDENING}

[Install]
WantedBy=multi-user.target
`;
}

const ROOT_NOTIFY = `# systemd-notify, run by the agent as root, sends with the agent's pid: only the main process speaks.
NotifyAccess=main
`;

const ROOT_HARDENING = `# Hardening without a mount namespace, and no capability, device or syscall Podman needs.
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
SystemCallArchitectures=native`;

/**
 * Rootless Podman maps the account's subordinate ids with the setuid newuidmap and newgidmap, which
 * NoNewPrivileges= disarms (`newuidmap: write to uid_map failed: Operation not permitted`, Podman
 * 4.3 and 5.4 alike). systemd 252 also implies it for a unit with User= from each seccomp option
 * (LockPersonality=, RestrictRealtime=, SystemCallArchitectures=; 257 no longer does): measured
 * in the device lab, docs/device-lab.md.
 */
const USER_HARDENING = `# No NoNewPrivileges=, nor LockPersonality=, RestrictRealtime=, SystemCallArchitectures=, which
# imply it for a unit with User= on systemd 252: rootless Podman runs the setuid newuidmap.`;

/**
 * The account's service manager (user@UID.service) runs the services: the agent starts once it is
 * up, and pulls it in on a device where nothing else has yet (a first start before lingering).
 */
function userManagerOrder({ name, uid }: AgentAccount): string {
  return `# The services are ${name}'s own units: its service manager comes first.
Wants=user@${uid}.service
After=user@${uid}.service
`;
}

/**
 * The agent as the account, with what a login's pam_systemd would give it: the runtime directory
 * where systemctl --user, journalctl --user and Podman find the account's manager and bus.
 * Lingering (loginctl enable-linger, Podman in Action §7) is what starts that manager at boot
 * with nobody logged in and keeps it when the account's last login ends; logind lets only root set it for
 * another account without polkit, hence `+` (full privileges for that command alone).
 */
function userService({ name, uid }: AgentAccount): string {
  return `# As ${name}, systemd-notify sends with its own pid (its parent's needs root): any process may speak.
NotifyAccess=all
User=${name}
# Lingering: ${name}'s service manager starts at boot without a login and outlives its logins.
ExecStartPre=+/usr/bin/loginctl enable-linger ${name}
Environment=XDG_RUNTIME_DIR=/run/user/${uid}
Environment=DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/${uid}/bus
`;
}

/** A user name systemd and shadow both take (useradd's default NAME_REGEX, at most 32). */
const ACCOUNT_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

function checkedAccount(account: AgentAccount): AgentAccount {
  if (!ACCOUNT_NAME.test(account.name)) {
    throw new Error(`user.name: must be a user name (a-z, 0-9, _ and -), not ${account.name}`);
  }
  if (!Number.isInteger(account.uid) || account.uid < 1 || account.uid >= 2 ** 31) {
    throw new Error(`user.uid: must be the account's uid, a whole number above 0`);
  }
  return account;
}

/** An ExecStart= word systemd takes as it is: no quoting, no specifiers, no variables. */
const PLAIN_PATH = /^\/[A-Za-z0-9._/+-]*$/;

type PathOptions = Required<Omit<AgentUnitOptions, 'user'>>;

function checked(options: PathOptions): PathOptions {
  for (const field of ['entry', 'config'] as const) {
    if (!PLAIN_PATH.test(options[field])) {
      throw new Error(`${field}: must be an absolute path of letters, digits and ._/+- only`);
    }
  }
  for (const field of ['watchdogSec', 'restartSec'] as const) {
    const value = options[field];
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`${field}: must be a whole number of seconds, at least 1`);
    }
  }
  return options;
}
