import { describe, expect, it } from 'vitest';
import { deviceMayConnect, deviceMayPublish, deviceMaySubscribe } from './embedded-access.js';

describe('the embedded broker’s rules for devices', () => {
  it('lets a device subscribe to its own desired and cmd topics only', () => {
    expect(deviceMaySubscribe('pi-1', 'pf/v1/dev/pi-1/desired')).toBe(true);
    expect(deviceMaySubscribe('pi-1', 'pf/v1/dev/pi-1/cmd')).toBe(true);
    for (const filter of [
      '$share/podfleet/pf/v1/dev/+/events',
      '$share/x/pf/v1/dev/pi-1/desired',
      'pf/v1/dev/+/events',
      'pf/v1/dev/+/desired',
      'pf/v1/dev/pi-2/desired',
      'pf/v1/dev/pi-1/events',
      '#',
      '$SYS/#',
    ]) {
      expect(deviceMaySubscribe('pi-1', filter)).toBe(false);
    }
  });

  it('lets a device publish its own reports only', () => {
    for (const kind of ['state', 'events', 'online', 'cmd/res']) {
      expect(deviceMayPublish('pi-1', `pf/v1/dev/pi-1/${kind}`)).toBe(true);
      expect(deviceMayPublish('pi-1', `pf/v1/dev/pi-2/${kind}`)).toBe(false);
    }
    expect(deviceMayPublish('pi-1', 'pf/v1/dev/pi-1/desired')).toBe(false);
    expect(deviceMayPublish('pi-1', 'pf/v1/dev/pi-1/cmd')).toBe(false);
  });

  it('keeps devices out of the controllers’ client ids', () => {
    expect(deviceMayConnect('pi-1')).toBe(true);
    expect(deviceMayConnect('podfleet-controller-host')).toBe(false);
  });
});
