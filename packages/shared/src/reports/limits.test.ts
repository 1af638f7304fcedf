import { describe, expect, it } from 'vitest';
import { clipDeviceEvent, DeviceEvent } from './device-event.js';
import { clipDeviceText, DEVICE_LIMITS, deviceCount, deviceTime } from './limits.js';

describe('bounds on what a device sends', () => {
  it('takes counts up to Postgres integer and no further', () => {
    expect(deviceCount.safeParse(2_147_483_647).success).toBe(true);
    expect(deviceCount.safeParse(2_147_483_648).success).toBe(false);
    expect(deviceCount.safeParse(-1).success).toBe(false);
  });

  it('takes device times from 1970 until 2200, as the device said them', () => {
    expect(deviceTime.safeParse('1970-01-01T00:00:00Z').success).toBe(true);
    expect(deviceTime.safeParse('2199-12-31T23:59:59.999Z').success).toBe(true);
    expect(deviceTime.safeParse('2200-01-01T00:00:00Z').success).toBe(false);
    expect(deviceTime.safeParse('1969-12-31T23:59:59Z').success).toBe(false);
    expect(deviceTime.safeParse('0000-01-01T00:00:00Z').success).toBe(false);
  });

  it('clips text to its limit with a mark, and makes NUL and lone surrogates storable', () => {
    const clipped = clipDeviceText('x'.repeat(5000), 100);
    expect(clipped).toHaveLength(100);
    expect(clipped.endsWith(' …(clipped)')).toBe(true);
    expect(clipDeviceText('a\u0000b\ud800', 100)).toBe('a\uFFFDb\uFFFD');
    expect(clipDeviceText('short', 100)).toBe('short');
    // A surrogate pair cut in half is not left lone.
    expect(clipDeviceText('😀'.repeat(200), 50).isWellFormed()).toBe(true);
  });

  it('clips an agent’s event so that the controller accepts it, whatever podman and the journal said', () => {
    const event = clipDeviceEvent({
      id: '5f0c5d38-4f4e-4a43-9d7e-2d0d0c1e8c11',
      device: 'pi-1',
      at: new Date().toISOString(),
      type: 'rollback',
      service: 'web',
      generation: 3,
      trigger: 'apply',
      fromImage: 'web:2',
      toImage: 'web:1',
      reason: 'r'.repeat(20_000),
      restored: true,
      failure: {
        reason: 'crashed-after-start',
        detail: 'd\u0000'.repeat(5000),
        journal: Array.from({ length: 80 }, (_, i) => `${i} ${'j'.repeat(2000)}`),
      },
    });
    const parsed = DeviceEvent.safeParse(event);
    expect(parsed.success).toBe(true);
    if (event.type !== 'rollback') throw new Error('type changed');
    // The newest lines are kept; older ones go until the event fits.
    expect(event.failure?.journal.at(-1)?.startsWith('79 ')).toBe(true);
    expect(event.failure?.journal.length).toBeGreaterThan(10);
    expect(Buffer.byteLength(JSON.stringify(event))).toBeLessThan(DEVICE_LIMITS.eventBytes);
  });
});
