import { readFileSync } from 'node:fs';
import type { IClientOptions } from 'mqtt';
import { z } from 'zod';
import { formatIssues } from '@podfleet/shared';
import { ConfigError } from '../serve/config.js';

const AbsolutePath = z.string().trim().startsWith('/', { message: 'must be an absolute path' });

/** The controller's TLS to the broker (MQTT_URL mqtts:// or wss://) with a private CA. */
export const BrokerTlsConfig = z
  .object({
    MQTT_URL: z.string().optional(),
    /** CA certificate(s) (PEM) the broker's certificate must chain to, instead of the system's. */
    PODFLEET_MQTT_CA_FILE: AbsolutePath.optional(),
    /** A client certificate and its key, for brokers that require one (require_certificate). */
    PODFLEET_MQTT_CERT_FILE: AbsolutePath.optional(),
    PODFLEET_MQTT_KEY_FILE: AbsolutePath.optional(),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.PODFLEET_MQTT_CERT_FILE) !== Boolean(env.PODFLEET_MQTT_KEY_FILE)) {
      ctx.addIssue({
        code: 'custom',
        path: ['PODFLEET_MQTT_KEY_FILE'],
        message: 'PODFLEET_MQTT_CERT_FILE and PODFLEET_MQTT_KEY_FILE go together',
      });
    }
    const tls = env.MQTT_URL ? /^(mqtts|wss|ssl):/.test(env.MQTT_URL) : false;
    if (!tls && (env.PODFLEET_MQTT_CA_FILE || env.PODFLEET_MQTT_CERT_FILE)) {
      ctx.addIssue({
        code: 'custom',
        path: ['PODFLEET_MQTT_CA_FILE'],
        message: 'needs MQTT_URL mqtts:// or wss:// (TLS)',
      });
    }
  });

/**
 * MQTT.js options for the controller's broker connection: the CA (and client certificate) files
 * read once, and the broker's certificate always verified (never rejectUnauthorized: false).
 * Empty when no file is configured: mqtts:// then trusts the system's CAs.
 */
export function brokerTlsOptions(env: Readonly<Record<string, unknown>>): IClientOptions {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => typeof value === 'string' && value !== ''),
  );
  const parsed = BrokerTlsConfig.safeParse(present);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error));
  const { PODFLEET_MQTT_CA_FILE: ca, PODFLEET_MQTT_CERT_FILE: cert } = parsed.data;
  const key = parsed.data.PODFLEET_MQTT_KEY_FILE;
  return {
    ...(ca ? { ca: read(ca, 'PODFLEET_MQTT_CA_FILE') } : {}),
    ...(cert && key
      ? { cert: read(cert, 'PODFLEET_MQTT_CERT_FILE'), key: read(key, 'PODFLEET_MQTT_KEY_FILE') }
      : {}),
    rejectUnauthorized: true,
  };
}

function read(path: string, variable: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError([
      `${variable}: cannot read ${path} (${(error as NodeJS.ErrnoException).code})`,
    ]);
  }
}
