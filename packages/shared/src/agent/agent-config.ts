import { createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { DeviceId } from '../manifest/device-id.js';
import { duration } from '../spec/duration.js';

const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:'];

const BrokerUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a URL: ${JSON.stringify(value)}` });
    return;
  }
  if (!BROKER_PROTOCOLS.includes(url.protocol) || !url.hostname) {
    ctx.addIssue({
      code: 'custom',
      message: `must be mqtt://, mqtts://, ws:// or wss://HOST[:PORT], not ${JSON.stringify(value)}`,
    });
  }
});

/** A controller public key: manifests must be signed by one of them (Ed25519, SPKI PEM). */
const PublicKeyPem = z.string().superRefine((value, ctx) => {
  try {
    if (createPublicKey(value).asymmetricKeyType === 'ed25519') return;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'not an Ed25519 public key in PEM form' });
});

const AbsolutePath = z.string().startsWith('/', { message: 'must be an absolute path' });

/** `off`, or how often to run `podman auto-update` (`1h`, `30m`, seconds). */
const AutoUpdateSchedule = z
  .union([z.literal('off'), duration])
  .refine((value) => value === 'off' || value >= 60, { message: 'must be off or at least 1m' });

export const AgentBrokerConfig = z
  .strictObject({
    url: BrokerUrl,
    /** The broker's ACL knows a device by its username; the device id when absent. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /** A file holding the password (first line), so that the config can be world-readable. */
    passwordFile: AbsolutePath.optional(),
    /** CA certificate (PEM file) for mqtts:// and wss:// brokers with a private CA. */
    caFile: AbsolutePath.optional(),
    keepalive: duration.default(30),
    /** How long the broker keeps the session (subscriptions, queued commands) while offline. */
    sessionExpiry: duration.default(86_400),
  })
  .superRefine((broker, ctx) => {
    if (broker.password !== undefined && broker.passwordFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['passwordFile'],
        message: 'set password or passwordFile, not both',
      });
    }
  });

/** What `podfleet-agent run` reads from /etc/podfleet/agent.yaml. */
export const AgentConfig = z.strictObject({
  device: DeviceId,
  broker: AgentBrokerConfig,
  controller: z.strictObject({
    /** One key, or several while the controller rotates its key. */
    publicKeys: z
      .union([PublicKeyPem, z.array(PublicKeyPem).min(1, { message: 'at least one key' })])
      .transform((keys) => (typeof keys === 'string' ? [keys] : keys)),
  }),
  /** system: rootful units in /etc/…; user: rootless units in ~/.config/…. */
  scope: z.enum(['system', 'user']).default('system'),
  stateDir: AbsolutePath.default('/var/lib/podfleet'),
  autoUpdate: z.strictObject({ schedule: AutoUpdateSchedule.default(86_400) }).prefault({}),
  /** Overrides every service's ready.settle on this device (seconds), e.g. for slow hardware. */
  settle: duration.optional(),
  /** How often the agent publishes its state even when nothing changed. */
  reportInterval: duration.refine((s) => s >= 1, { message: 'must be at least 1s' }).default(60),
  /** How often the agent checks the host against the applied manifest and repairs drift. */
  driftInterval: duration.refine((s) => s >= 1, { message: 'must be at least 1s' }).default(300),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  podman: AbsolutePath.default('/usr/bin/podman'),
});
export type AgentConfig = z.output<typeof AgentConfig>;
export type AgentConfigInput = z.input<typeof AgentConfig>;
