import { stringify } from 'yaml';
import { AgentConfig, formatIssues, type AgentConfigInput } from '@podfleet/shared';

/**
 * Where enrollment puts the agent on a device: the bundled agent (one ESM file) in
 * /opt/podfleet/agent, its config and secrets in /etc/podfleet, its unit in /etc/systemd/system;
 * systemd makes its state directory (StateDirectory=podfleet).
 */
export const AGENT_DIR = '/opt/podfleet/agent';
export const AGENT_ENTRY = `${AGENT_DIR}/podfleet-agent.mjs`;
export const CONFIG_DIR = '/etc/podfleet';
export const CONFIG_PATH = `${CONFIG_DIR}/agent.yaml`;
export const PASSWORD_PATH = `${CONFIG_DIR}/broker-password`;
export const CA_PATH = `${CONFIG_DIR}/ca.crt`;
export const AGENT_UNIT = 'podfleet-agent.service';
export const UNIT_PATH = `/etc/systemd/system/${AGENT_UNIT}`;
export const STATE_DIR = '/var/lib/podfleet';

/** What must not exist before an enrollment: an earlier agent, or what it left behind. */
export const INSTALLED_PATHS = [CONFIG_PATH, UNIT_PATH, AGENT_DIR, STATE_DIR] as const;

/** The credentials the controller issued, by issuer (POST /v1/devices/:id/identity). */
export type IssuedCredentials = Record<string, Record<string, unknown>>;

export interface AgentFiles {
  /** /etc/podfleet/agent.yaml */
  config: string;
  /** The broker password file's text, when the controller issued a broker account. */
  password: string | undefined;
}

/**
 * The agent's config from the issued identity: `controller.publicKeys` (required: an agent that
 * trusts no key acts on no manifest), the broker account if one was issued (its password in a
 * file of its own, mode 0600), the CA when the broker's certificate needs it. Checked against the
 * agent's own schema, so a config the agent would refuse is never written.
 */
export function agentFiles(
  device: string,
  brokerUrl: string,
  credentials: IssuedCredentials,
  withCa: boolean,
): AgentFiles {
  const keys = credentials.controller?.publicKeys;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'string')) {
    throw new Error(
      'the controller issued no manifest key (credentials.controller.publicKeys): it runs without the controller key issuer',
    );
  }
  const broker = credentials.broker;
  const username = typeof broker?.username === 'string' ? broker.username : undefined;
  const password = typeof broker?.password === 'string' ? broker.password : undefined;
  const config: AgentConfigInput = {
    device,
    broker: {
      url: brokerUrl,
      ...(username !== undefined && username !== device ? { username } : {}),
      ...(password !== undefined ? { passwordFile: PASSWORD_PATH } : {}),
      ...(withCa ? { caFile: CA_PATH } : {}),
    },
    controller: { publicKeys: keys as string[] },
  };
  const checked = AgentConfig.safeParse(config);
  if (!checked.success) {
    throw new Error(`agent config: ${formatIssues(checked.error).join('; ')}`);
  }
  const text = `# Written by \`podfleet enroll ssh\`: this device's identity.\n${stringify(config, { lineWidth: 0 })}`;
  return { config: text, password: password === undefined ? undefined : `${password}\n` };
}
