import { isControllerId, parseDeviceTopic } from '@podfleet/shared';

/** The account the controller logs in to its embedded broker with (its password is per process). */
export const EMBEDDED_CONTROLLER_USER = 'podfleet-controller';

/**
 * The embedded broker's rules for anyone but the controller, deploy/mosquitto/acl's `%u`
 * patterns with the client id as the device id: a device subscribes to its own `desired` and
 * `cmd` only (no `$share/…`, no wildcard) and publishes to its own reports only.
 */
export function deviceMaySubscribe(clientId: string, filter: string): boolean {
  const topic = parseDeviceTopic(filter);
  return topic?.device === clientId && (topic.kind === 'desired' || topic.kind === 'cmd');
}

export function deviceMayPublish(clientId: string, name: string): boolean {
  const topic = parseDeviceTopic(name);
  return topic?.device === clientId && topic.kind !== 'desired' && topic.kind !== 'cmd';
}

/** Whether a client that is not the controller may connect under `clientId`. */
export function deviceMayConnect(clientId: string): boolean {
  return !isControllerId(clientId);
}
