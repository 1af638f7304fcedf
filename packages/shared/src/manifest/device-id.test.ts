import { describe, expect, it } from 'vitest';
import { DeviceId, isControllerId, NewDeviceId } from './device-id.js';

describe('device ids and the controllers’ client ids', () => {
  it('refuses a new device whose id a controller’s MQTT client id may have, in any letter case', () => {
    for (const id of ['podfleet-controller', 'podfleet-controller-1', 'Podfleet-Controller-x']) {
      expect(isControllerId(id)).toBe(true);
      const parsed = NewDeviceId.safeParse(id);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.message).toMatch(/^must not start with podfleet-controller/);
    }
  });

  it('accepts other ids, and still reads an existing device named so', () => {
    for (const id of ['pi-17', 'podfleet-controlle', 'my-podfleet-controller']) {
      expect(NewDeviceId.safeParse(id).success).toBe(true);
    }
    expect(DeviceId.safeParse('podfleet-controller-1').success).toBe(true);
  });
});
