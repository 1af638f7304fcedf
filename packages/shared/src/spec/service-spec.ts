import { z } from 'zod';
import { specDuration } from './duration.js';
import { parseImageReference } from './image.js';
import { unitText, unitWord } from './text.js';

export const SERVICE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._\-/]{0,252}$/;
const AUTOUPDATE_LABEL = 'io.containers.autoupdate';
const VOLUME_OPTIONS = new Set([
  'ro', 'rw', 'z', 'Z', 'U', 'O', 'copy', 'nocopy', 'dev', 'nodev', 'exec', 'noexec', 'suid',
  'nosuid', 'shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate', 'bind', 'rbind',
  'idmap', 'noatime',
]); // prettier-ignore

const custom = (ctx: z.RefinementCtx, message: string) => ctx.addIssue({ code: 'custom', message });

const portNumber = (text: string) =>
  /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;
const portOrRange = (text: string) => {
  const [low, high, extra] = text.split('-');
  if (extra !== undefined || !portNumber(low!)) return false;
  return high === undefined || (portNumber(high) && Number(high) >= Number(low));
};
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const IPV6 = /^\[[0-9a-fA-F:.]+\]$/;

/** `[ip:]host:container[/proto]`, as `podman run -p` takes it. */
function portProblem(value: string): string | undefined {
  const [mapping, proto, extra] = value.split('/');
  if (extra !== undefined || (proto !== undefined && !['tcp', 'udp', 'sctp'].includes(proto))) {
    return 'protocol must be tcp, udp or sctp';
  }
  const ipv6 = /^(\[[^\]]*\]):(.*)$/.exec(mapping!);
  const [ip, rest] = ipv6 ? [ipv6[1], ipv6[2]!] : [undefined, mapping!];
  const parts = rest.split(':');
  if (ip === undefined && parts.length === 3) {
    if (!IPV4.test(parts[0]!)) return `not an IP address: ${parts[0]}`;
  } else if (ip !== undefined) {
    if (!IPV6.test(ip)) return `not an IP address: ${ip}`;
    if (parts.length !== 2) return 'expected [ip:]host:container[/proto]';
  } else if (parts.length !== 2) {
    return 'expected [ip:]host:container[/proto]';
  }
  const [host, container] = parts.slice(-2) as [string, string];
  if (host !== '' && !portOrRange(host)) return `not a port: ${host}`;
  if (!portOrRange(container)) return `not a port: ${container}`;
  return undefined;
}

/** `source:destination[:options]`: a host path or a named volume, then an absolute path. */
function volumeProblem(value: string): string | undefined {
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3) return 'expected source:destination[:options]';
  const [source, destination, options] = parts as [string, string, string | undefined];
  if (!source.startsWith('/') && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(source)) {
    return 'source must be an absolute path or a volume name';
  }
  if (!destination.startsWith('/')) return 'destination must be an absolute path';
  // systemd reads RequiresMountsFor= (which Quadlet writes for a bind source) as blank-separated.
  if (/\s/.test(source) || /\s/.test(destination)) return 'paths must not contain blanks';
  for (const option of options?.split(',') ?? []) {
    if (!VOLUME_OPTIONS.has(option)) return `unknown volume option: ${option}`;
  }
  return undefined;
}

/** A socket address systemd's ListenStream= takes: `port`, `ip:port`, `[ipv6]:port` or `/path`. */
function listenProblem(value: string): string | undefined {
  if (value.startsWith('/')) return /[\s]/.test(value) ? 'path must not contain spaces' : undefined;
  if (portNumber(value)) return undefined;
  const match = /^(.*):(\d+)$/.exec(value);
  if (!match || !portNumber(match[2]!)) return 'expected port, ip:port, [ipv6]:port or /path';
  if (!IPV4.test(match[1]!) && !IPV6.test(match[1]!)) return `not an IP address: ${match[1]}`;
  return undefined;
}

/** A string → command-line word map whose keys are checked too; a bad key is reported under its own path. */
const keyedRecord = (keyProblem: (key: string) => string | undefined) =>
  z.record(z.string(), unitWord).superRefine((record, ctx) => {
    for (const key of Object.keys(record)) {
      const reason = keyProblem(key);
      if (reason) ctx.addIssue({ code: 'custom', path: [key], message: reason });
    }
  });

const checked = (problem: (value: string) => string | undefined) =>
  unitText.superRefine((value, ctx) => {
    const reason = problem(value);
    if (reason) custom(ctx, reason);
  });

export const RestartPolicy = z
  .string()
  .regex(/^(no|on-failure(:[1-9]\d{0,5})?|always|unless-stopped)$/, {
    message: 'must be no, on-failure, on-failure:N, always or unless-stopped',
  });

export const HealthCheck = z.strictObject({
  cmd: unitText.min(1, 'must not be empty'),
  interval: specDuration.default(30),
  startPeriod: specDuration.default(0),
  timeout: specDuration.optional(),
  retries: z.number().int().min(1).max(1000).default(3),
});

export const ReadyGate = z.strictObject({
  /** The unit must be active (and, with Type=notify, ready) within this many seconds. */
  timeout: specDuration.default(60),
  /** …and still be active, without a restart, this many seconds later. */
  settle: specDuration.default(15),
});

export const ServiceSpec = z
  .strictObject({
    name: z.string().regex(SERVICE_NAME, {
      message: 'must match [a-z0-9][a-z0-9-]{0,62} (it names the unit)',
    }),
    image: unitText.refine((value) => parseImageReference(value) !== undefined, {
      message: 'not an image reference (registry/repository[:tag][@sha256:digest])',
    }),
    command: z.array(unitWord).min(1, 'must not be empty when given').optional(),
    env: keyedRecord((key) =>
      ENV_NAME.test(key) ? undefined : 'variable name must match [A-Za-z_][A-Za-z0-9_]*',
    ).default({}),
    ports: z.array(checked(portProblem)).default([]),
    volumes: z.array(checked(volumeProblem)).default([]),
    labels: keyedRecord((key) => {
      if (!LABEL_KEY.test(key)) return 'label key must match [A-Za-z0-9][A-Za-z0-9._/-]*';
      if (key === AUTOUPDATE_LABEL)
        return `set autoUpdate instead of the ${AUTOUPDATE_LABEL} label`;
      return undefined;
    }).default({}),
    restart: RestartPolicy.default('on-failure'),
    stopTimeout: z.number().int().min(0).max(86_400).default(10),
    notify: z.enum(['conmon', 'container', 'healthy']).default('conmon'),
    health: HealthCheck.optional(),
    ready: ReadyGate.default({ timeout: 60, settle: 15 }),
    autoUpdate: z.enum(['registry', 'local', 'off']).default('off'),
    systemd: z.union([z.boolean(), z.literal('always')]).optional(),
    init: z.boolean().default(false),
    socket: z
      .strictObject({
        listen: z.array(checked(listenProblem)).min(1, 'needs at least one address'),
      })
      .optional(),
    logDriver: z.enum(['journald', 'k8s-file', 'none']).optional(),
    scope: z.enum(['system', 'user']).default('system'),
  })
  .superRefine((spec, ctx) => {
    if (spec.init && spec.systemd === 'always') {
      // Podman: "cannot use container-init binary with systemd=always" (systemd is the init).
      ctx.addIssue({
        code: 'custom',
        path: ['init'],
        message: 'not with systemd: always (systemd is the init)',
      });
    }
    if (spec.notify === 'healthy' && !spec.health) {
      ctx.addIssue({ code: 'custom', path: ['notify'], message: 'healthy needs a health check' });
    }
    const image = parseImageReference(spec.image);
    if (spec.autoUpdate === 'registry' && image) {
      // Podman's registry policy compares the tag's digest in the registry with the local image.
      if (image.digest) {
        ctx.addIssue({
          code: 'custom',
          path: ['autoUpdate'],
          message: 'registry follows a tag, but image is pinned by digest',
        });
      } else if (!image.registry) {
        ctx.addIssue({
          code: 'custom',
          path: ['image'],
          message: 'autoUpdate registry needs a fully qualified image (registry.example/repo:tag)',
        });
      }
    }
  });

/** A service spec as an operator writes it (defaults optional). */
export type ServiceSpecInput = z.input<typeof ServiceSpec>;
/** A validated service spec with every default filled in; durations in seconds. */
export type ServiceSpec = z.output<typeof ServiceSpec>;
