import { describe, expect, it } from 'vitest';
import { complianceText } from './devices.js';
import { runningText } from './services.js';

describe('the COMPLIANCE column of devices ls', () => {
  it('names the services in the device state, with a failure reason', () => {
    expect(
      complianceText({
        state: 'failed',
        services: [
          { service: 'web', state: 'failed', desired: 'w:1.8', running: 'w:1.4', failure: { reason: 'start-timeout', detail: 'x' } }, // prettier-ignore
          { service: 'db', state: 'drifted', desired: 'd:2', running: 'd:1' },
          { service: 'api', state: 'failed', desired: 'a:2', running: 'a:2', failure: { reason: 'unhealthy', detail: 'y' } }, // prettier-ignore
        ],
      }),
    ).toBe('failed (web: start-timeout, api: unhealthy)');
    expect(
      complianceText({
        state: 'drifted',
        services: [{ service: 'db', state: 'drifted', desired: 'd:2', running: 'd:1' }],
      }),
    ).toBe('drifted (db)');
  });

  it('says in-sync, offline and unknown alone', () => {
    const web = { service: 'web', desired: 'w:1', running: 'w:1' };
    expect(complianceText({ state: 'in-sync', services: [{ ...web, state: 'in-sync' }] })).toBe(
      'in-sync',
    );
    expect(complianceText({ state: 'offline', services: [{ ...web, state: 'offline' }] })).toBe(
      'offline',
    );
    expect(complianceText({ state: 'unknown', services: [] })).toBe('unknown');
  });
});

describe('the RUNNING column of services ls', () => {
  it('counts devices per image, most first, and says when one reference runs as several images', () => {
    expect(
      runningText([
        { image: 'w:1.8', devices: 9, imageIds: [{ imageId: 'a', devices: 6 }, { imageId: 'b', devices: 3 }] }, // prettier-ignore
        { image: 'w:1.4', devices: 1, imageIds: [{ imageId: 'c', devices: 1 }] },
      ]),
    ).toBe('9 × w:1.8 (2 image ids), 1 × w:1.4');
    expect(
      runningText([{ image: 'w:1', devices: 2, imageIds: [{ imageId: null, devices: 2 }] }]),
    ).toBe('2 × w:1');
    expect(runningText([])).toBe('-');
  });
});
