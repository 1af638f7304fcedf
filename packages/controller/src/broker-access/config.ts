import { z } from 'zod';
import { formatIssues } from '@podfleet/shared';
import { ConfigError } from '../serve/config.js';
import { MosquittoAccess, signalReload } from './mosquitto-access.js';

const AbsolutePath = z.string().trim().startsWith('/', { message: 'must be an absolute path' });

/**
 * The environment of per-device broker accounts. Without PODFLEET_BROKER_PASSWORD_FILE the
 * controller issues none (the embedded broker, or accounts managed elsewhere).
 */
export const BrokerAccessConfig = z
  .object({
    MQTT_URL: z.string().optional(),
    /** The Mosquitto password file the controller writes (mosquitto.conf `password_file`). */
    PODFLEET_BROKER_PASSWORD_FILE: AbsolutePath.optional(),
    /** Mosquitto's `pid_file`: the controller sends SIGHUP to that pid after each write. */
    PODFLEET_BROKER_PID_FILE: AbsolutePath.optional(),
    /** A password file of accounts that are not devices, kept in the written file as they are. */
    PODFLEET_BROKER_PASSWORD_BASE: AbsolutePath.optional(),
  })
  .superRefine((env, ctx) => {
    if (env.PODFLEET_BROKER_PASSWORD_FILE && !env.PODFLEET_BROKER_PID_FILE) {
      ctx.addIssue({
        code: 'custom',
        path: ['PODFLEET_BROKER_PID_FILE'],
        message: 'needed with PODFLEET_BROKER_PASSWORD_FILE (Mosquitto reloads the file on SIGHUP)',
      });
    }
  });

/**
 * The broker access `podfleet serve` gives enrollment, or undefined when not configured. The
 * controller's own account (MQTT_URL's user:password) is written into the file too, so that
 * rewriting the file never locks the controller out.
 */
export function brokerAccessFromEnv(
  env: Readonly<Record<string, unknown>>,
): MosquittoAccess | undefined {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, value]) => typeof value === 'string' && value !== ''),
  );
  const parsed = BrokerAccessConfig.safeParse(present);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error));
  const config = parsed.data;
  if (!config.PODFLEET_BROKER_PASSWORD_FILE || !config.PODFLEET_BROKER_PID_FILE) return undefined;
  return new MosquittoAccess({
    passwordFile: config.PODFLEET_BROKER_PASSWORD_FILE,
    reload: signalReload(config.PODFLEET_BROKER_PID_FILE),
    accounts: controllerAccount(config.MQTT_URL),
    ...(config.PODFLEET_BROKER_PASSWORD_BASE
      ? { baseFile: config.PODFLEET_BROKER_PASSWORD_BASE }
      : {}),
  });
}

/** MQTT_URL's `user:password@`, URL-decoded; none when it has no user. */
export function controllerAccount(
  mqttUrl: string | undefined,
): { username: string; password: string }[] {
  if (!mqttUrl) return [];
  const url = new URL(mqttUrl);
  if (!url.username) return [];
  return [
    { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) },
  ];
}
