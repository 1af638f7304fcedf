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
}

/**
 * Node flags the agent runs with. V8 grows its young generation to 16 MB a semi-space after the
 * first bursts of allocation and keeps it: 1 MB is plenty for an agent that allocates little
 * (issue #8: idle RSS under 60 MB). NODE_OPTIONS rather than ExecStart words, so that ExecStart
 * stays `node ENTRY …`.
 */
export const AGENT_NODE_OPTIONS = '--max-semi-space-size=1';

export const AGENT_UNIT_DEFAULTS: Required<AgentUnitOptions> = {
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
  return `# podfleet-agent: converges this device to its manifest with systemd and Podman.
# Rendered by renderAgentUnit (packages/agent/src/install/agent-unit-file.ts).
[Unit]
Description=podfleet agent
Wants=network-online.target
After=network-online.target
# Never stop restarting it: the agent is the device's only way back to its controller.
StartLimitIntervalSec=0

[Service]
Type=notify
# systemd-notify, run by the agent as root, sends with the agent's pid: only the main process speaks.
NotifyAccess=main
Environment=NODE_OPTIONS=${AGENT_NODE_OPTIONS}
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
# Hardening without a mount namespace, and no capability, device or syscall Podman needs.
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
`;
}

/** An ExecStart= word systemd takes as it is: no quoting, no specifiers, no variables. */
const PLAIN_PATH = /^\/[A-Za-z0-9._/+-]*$/;

function checked(options: Required<AgentUnitOptions>): Required<AgentUnitOptions> {
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
