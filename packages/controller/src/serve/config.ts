import { hostname } from 'node:os';
import { z } from 'zod';
import { CONTROLLER_ID_PREFIX, formatIssues } from '@podfleet/shared';
import { DEFAULT_DATA_DIR } from './data-dir.js';
import type { ServeVariable } from './environment.js';

const port = z.coerce.number().int().min(0).max(65_535);

/**
 * `podfleet serve`'s environment (docs/contract.md). Its keys are exactly environment.ts's list,
 * which `serve --help` prints: the `satisfies` below fails to compile on one missing or extra.
 */
export const ServeConfig = z.object({
  DATABASE_URL: z.string().trim().min(1).optional(),
  MQTT_URL: z
    .string()
    .trim()
    .regex(/^(mqtts?|wss?|tcp|ssl):\/\//, {
      message: 'must start with mqtt://, mqtts://, ws:// or wss://',
    })
    .optional(),
  PORT: port.default(8080),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PODFLEET_DATA: z.string().trim().min(1).default(DEFAULT_DATA_DIR),
  /** The embedded broker's port, when MQTT_URL is not set. */
  PODFLEET_MQTT_PORT: port.default(1883),
  PODFLEET_MQTT_HOST: z.string().trim().min(1).default('127.0.0.1'),
  /**
   * The controller's MQTT client id: stable across restarts, so its broker session survives them.
   * In the controllers' id space, which no device id may enter (NewDeviceId).
   */
  PODFLEET_CONTROLLER_ID: z
    .string()
    .trim()
    .startsWith(CONTROLLER_ID_PREFIX, {
      message: `must start with ${CONTROLLER_ID_PREFIX} (device ids cannot, so no device can take this client id)`,
    })
    .default(`${CONTROLLER_ID_PREFIX}-${hostname()}`),
  /**
   * How long the broker keeps this controller's session (and queues its share of device messages)
   * while it is away. A controller retired for good leaves its session for that long.
   */
  PODFLEET_MQTT_SESSION_EXPIRY: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 3600),
  /**
   * The shared-subscription group: the same for every controller of one fleet. Unset, a random
   * one stored in the database (serve/share-group.ts); one set here must be kept from devices.
   */
  PODFLEET_SHARE_GROUP: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, { message: 'letters, digits, _ and - only' })
    .optional(),
  /** A device not heard from for this many seconds is offline. */
  PODFLEET_OFFLINE_AFTER: z.coerce.number().int().min(10).default(180),
  PODFLEET_SIGNING_KEY: z.string().optional(),
  /** Checked by keys/signing-key.ts; listed so that parsing keeps it for loadSigningKey. */
  PODFLEET_SIGNING_KEY_CHAIN: z.string().optional(),
  // Per-device broker accounts and TLS to the broker: checked, naming the variable, by
  // broker-access/config.ts and broker-access/tls-options.ts (docs/security.md).
  PODFLEET_BROKER_PASSWORD_FILE: z.string().optional(),
  PODFLEET_BROKER_PID_FILE: z.string().optional(),
  PODFLEET_BROKER_PASSWORD_BASE: z.string().optional(),
  PODFLEET_MQTT_CA_FILE: z.string().optional(),
  PODFLEET_MQTT_CERT_FILE: z.string().optional(),
  PODFLEET_MQTT_KEY_FILE: z.string().optional(),
  /**
   * `registry`: a rollout's image tag is resolved to one digest when it starts (every device gets
   * the same bits); `off` rolls the tag out as given (a simulated fleet with no registry).
   */
  PODFLEET_RESOLVE_TAGS: z.enum(['registry', 'off']).default('registry'),
  // How the controller reaches registries: checked, naming the variable, by rollouts/image-digest.ts.
  PODFLEET_REGISTRY_AUTH_FILE: z.string().optional(),
  PODFLEET_REGISTRY_INSECURE: z.string().optional(),
  PODFLEET_REGISTRY_CERTS_DIR: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
} satisfies Record<ServeVariable, z.ZodType>);
export type ServeConfig = z.output<typeof ServeConfig>;

/** Reads the environment; every problem is one line naming the variable. */
export function readServeConfig(env: Record<string, string | undefined>): ServeConfig {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = ServeConfig.safeParse(present);
  if (!result.success) throw new ConfigError(formatIssues(result.error));
  return result.data;
}

export class ConfigError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('; '));
  }
}
