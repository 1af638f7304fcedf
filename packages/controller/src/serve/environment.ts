// Every environment variable `podfleet serve` reads, with what it means: `serve --help` prints
// this list, and config.ts's schema must name exactly these (a compile-time check there, and
// config.test.ts both ways). Plain data, no zod: `podfleet --help` must not load the server.

/** Variable → one line for `serve --help`; defaults in parentheses, as config.ts applies them. */
export const SERVE_ENVIRONMENT = {
  DATABASE_URL: 'Postgres (postgres://…); unset: the embedded store under PODFLEET_DATA',
  MQTT_URL: 'broker (mqtt[s]://user:pass@host:port, ws[s]://); unset: an embedded broker',
  PORT: 'HTTP port of the API and dashboard (8080; --port wins)',
  HOST: 'address the API listens on (127.0.0.1)',
  PODFLEET_DATA: 'keys, ingest journal, admin token, embedded store (.podfleet; --data wins)',
  PODFLEET_MQTT_HOST: 'embedded broker: listen address (127.0.0.1)',
  PODFLEET_MQTT_PORT: 'embedded broker: port (1883)',
  PODFLEET_CONTROLLER_ID: 'MQTT client id, stable across restarts (podfleet-controller-<hostname>)',
  PODFLEET_MQTT_SESSION_EXPIRY: 'seconds the broker queues for this controller while away (86400)',
  PODFLEET_SHARE_GROUP: 'shared-subscription group of the fleet’s controllers (random, stored)',
  PODFLEET_OFFLINE_AFTER: 'seconds without a word before a device counts as offline (180)',
  PODFLEET_SIGNING_KEY: 'manifest-signing key (PEM) shared by a fleet’s controllers; unset: a file',
  PODFLEET_SIGNING_KEY_CHAIN: 'with PODFLEET_SIGNING_KEY: its rotation chain (JSON, keys rotate)',
  PODFLEET_BROKER_PASSWORD_FILE: 'Mosquitto password file the controller writes device accounts to',
  PODFLEET_BROKER_PID_FILE: 'Mosquitto pid file: SIGHUP after each write of the password file',
  PODFLEET_BROKER_PASSWORD_BASE: 'password file of non-device accounts kept in the written one',
  PODFLEET_MQTT_CA_FILE: 'CA (PEM) the broker’s certificate must chain to (mqtts:// or wss://)',
  PODFLEET_MQTT_CERT_FILE: 'client certificate (PEM) for a broker that requires one',
  PODFLEET_MQTT_KEY_FILE: 'its private key (PEM), with PODFLEET_MQTT_CERT_FILE',
  PODFLEET_RESOLVE_TAGS: 'registry: resolve a rollout’s tag to one digest at start; off (registry)',
  PODFLEET_REGISTRY_AUTH_FILE: 'registry logins (containers-auth.json, as podman login writes it)',
  PODFLEET_REGISTRY_INSECURE: 'registries (host:port, comma-separated) spoken to over plain http',
  PODFLEET_REGISTRY_CERTS_DIR: 'registry CAs, client certs: containers-certs.d(5) layout',
  LOG_LEVEL: 'fatal, error, warn, info, debug, trace or silent (info)',
} as const satisfies Record<string, string>;

export type ServeVariable = keyof typeof SERVE_ENVIRONMENT;

/** The `Environment` section of `serve --help`, one variable a line, meanings aligned. */
export function serveEnvironmentHelp(): string {
  const names = Object.keys(SERVE_ENVIRONMENT) as ServeVariable[];
  const width = Math.max(...names.map((name) => name.length)) + 2;
  const lines = names.map((name) => `  ${name.padEnd(width)}${SERVE_ENVIRONMENT[name]}`);
  return [
    'Environment (every variable serve reads):',
    ...lines,
    'Registry TLS also trusts NODE_EXTRA_CA_CERTS; certs.d defaults: /etc/containers/certs.d,',
    '/etc/docker/certs.d. Broker accounts and TLS: docs/security.md.',
  ].join('\n');
}
