import { formatDuration } from '../spec/duration.js';
import type { ServiceSpec } from '../spec/service-spec.js';

/** Podman's own default for --stop-timeout; the flag is left out when the spec keeps it. */
export const PODMAN_DEFAULT_STOP_TIMEOUT = 10;

/** The value of the `io.containers.autoupdate` label, or undefined when auto-update is off. */
export function autoUpdateLabel(spec: ServiceSpec): string | undefined {
  return spec.autoUpdate === 'off' ? undefined : spec.autoUpdate;
}

/**
 * The `podman run` options that come from the spec, after the boilerplate that the unit style adds
 * (`--cidfile … --rm -d --replace`): the argv an operator would pass to `podman create` to get
 * the same container, in a fixed order so that the same spec always renders the same bytes.
 * `--restart` is absent on purpose: under systemd, Restart= does that job (as in Podman's units).
 */
export function podmanRunOptions(spec: ServiceSpec): string[] {
  const args: string[] = ['--name', spec.name];
  if (spec.logDriver) args.push('--log-driver', spec.logDriver);
  if (spec.stopTimeout !== PODMAN_DEFAULT_STOP_TIMEOUT) {
    args.push('--stop-timeout', String(spec.stopTimeout));
  }
  if (spec.init) args.push('--init');
  if (spec.notify !== 'conmon') args.push(`--sdnotify=${spec.notify}`);
  if (spec.systemd !== undefined) args.push(`--systemd=${String(spec.systemd)}`);
  for (const key of Object.keys(spec.env).sort()) args.push('-e', `${key}=${spec.env[key]}`);
  for (const port of spec.ports) args.push('-p', port);
  for (const volume of spec.volumes) args.push('-v', volume);
  for (const key of Object.keys(spec.labels).sort())
    args.push('--label', `${key}=${spec.labels[key]}`);
  const policy = autoUpdateLabel(spec);
  if (policy) args.push('--label', `io.containers.autoupdate=${policy}`);
  args.push(...healthOptions(spec));
  return args;
}

/** `podman run` options and positional arguments: options, then the image, then the command. */
export function podmanRunArgs(spec: ServiceSpec): string[] {
  return [...podmanRunOptions(spec), spec.image, ...(spec.command ?? [])];
}

function healthOptions(spec: ServiceSpec): string[] {
  const health = spec.health;
  if (!health) return [];
  const args = ['--health-cmd', health.cmd, '--health-interval', formatDuration(health.interval)];
  args.push('--health-retries', String(health.retries));
  args.push('--health-start-period', formatDuration(health.startPeriod));
  if (health.timeout !== undefined) args.push('--health-timeout', formatDuration(health.timeout));
  return args;
}

/** What systemd's Restart= is for a Podman restart policy, and the retry cap of `on-failure:N`. */
export function systemdRestart(policy: string): { restart: string; startLimitBurst?: number } {
  if (policy === 'always' || policy === 'unless-stopped') return { restart: 'always' };
  if (policy === 'no') return { restart: 'no' };
  const [, retries] = policy.split(':');
  return retries
    ? { restart: 'on-failure', startLimitBurst: Number(retries) }
    : { restart: 'on-failure' };
}

/** Podman's TimeoutStopSec= for `generate systemd`: the container's stop timeout plus 60 s. */
export function timeoutStopSec(spec: ServiceSpec): number {
  return spec.stopTimeout + 60;
}
