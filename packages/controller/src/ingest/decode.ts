import {
  DEVICE_LIMITS,
  DeviceEvent,
  OnlineStatus,
  StateReport,
  formatIssues,
  parseDeviceTopic,
} from '@podfleet/shared';

export type DecodedMessage =
  | { kind: 'state'; device: string; state: StateReport }
  | { kind: 'event'; device: string; event: DeviceEvent }
  | { kind: 'online'; device: string; status: OnlineStatus };

export type DecodeResult =
  { ok: true; message: DecodedMessage } | { ok: false; device?: string; reason: string };

/**
 * Validates a device message against the shared schemas. The payload must name the device of its
 * topic: the broker's ACL vouches for the topic, not for what is written inside.
 */
export function decodeDeviceMessage(topic: string, payload: Buffer): DecodeResult {
  const parsedTopic = parseDeviceTopic(topic);
  if (!parsedTopic) return { ok: false, reason: `not a device topic: ${topic}` };
  const { device, kind } = parsedTopic;
  if (kind === 'online') {
    if (payload.length > DEVICE_LIMITS.onlineBytes)
      return {
        ok: false,
        device,
        reason: `online: ${payload.length} bytes, at most ${DEVICE_LIMITS.onlineBytes}`,
      };
    const status = OnlineStatus.safeParse(payload.toString().trim());
    return status.success
      ? { ok: true, message: { kind: 'online', device, status: status.data } }
      : { ok: false, device, reason: 'online: expected "online" or "offline"' };
  }
  if (kind !== 'state' && kind !== 'events')
    return { ok: false, device, reason: `not ingested: ${kind}` };
  const limit = kind === 'state' ? DEVICE_LIMITS.stateBytes : DEVICE_LIMITS.eventBytes;
  if (payload.length > limit)
    return { ok: false, device, reason: `${kind}: ${payload.length} bytes, at most ${limit}` };
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    return { ok: false, device, reason: `${kind}: not JSON` };
  }
  const schema = kind === 'state' ? StateReport : DeviceEvent;
  const result = schema.safeParse(json);
  if (!result.success)
    return { ok: false, device, reason: `${kind}: ${formatIssues(result.error).join('; ')}` };
  if (result.data.device !== device) {
    return {
      ok: false,
      device,
      reason: `${kind}: payload names device ${result.data.device}, topic ${device}`,
    };
  }
  return kind === 'state'
    ? { ok: true, message: { kind: 'state', device, state: result.data as StateReport } }
    : { ok: true, message: { kind: 'event', device, event: result.data as DeviceEvent } };
}
