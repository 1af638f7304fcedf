// MQTT topics, v1 (docs/contract.md, "MQTT topics").

const PREFIX = 'pf/v1/dev';

export type DeviceTopicKind = 'desired' | 'state' | 'events' | 'online' | 'cmd' | 'cmd/res';

export const topics = {
  desired: (device: string) => `${PREFIX}/${device}/desired`,
  state: (device: string) => `${PREFIX}/${device}/state`,
  events: (device: string) => `${PREFIX}/${device}/events`,
  online: (device: string) => `${PREFIX}/${device}/online`,
  cmd: (device: string) => `${PREFIX}/${device}/cmd`,
  cmdResult: (device: string) => `${PREFIX}/${device}/cmd/res`,
} as const;

/** The controllers' shared subscriptions: several controller processes split the devices' traffic. */
export const controllerSubscriptions = {
  state: `$share/podfleet/${PREFIX}/+/state`,
  events: `$share/podfleet/${PREFIX}/+/events`,
  online: `$share/podfleet/${PREFIX}/+/online`,
  cmdResult: `$share/podfleet/${PREFIX}/+/cmd/res`,
} as const;

const DEVICE_TOPIC = /^pf\/v1\/dev\/([^/+#]+)\/(desired|state|events|online|cmd|cmd\/res)$/;

/** The device and kind of a v1 device topic; undefined for any other topic. */
export function parseDeviceTopic(
  topic: string,
): { device: string; kind: DeviceTopicKind } | undefined {
  const match = DEVICE_TOPIC.exec(topic);
  return match ? { device: match[1]!, kind: match[2] as DeviceTopicKind } : undefined;
}
