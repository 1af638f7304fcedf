import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, readServeConfig } from './config.js';

describe('serve configuration: the controller’s client id', () => {
  it('defaults to podfleet-controller-<hostname>', () => {
    expect(readServeConfig({}).PODFLEET_CONTROLLER_ID).toBe(`podfleet-controller-${hostname()}`);
  });

  it('refuses an id outside the controllers’ id space, naming the variable', () => {
    const read = () => readServeConfig({ PODFLEET_CONTROLLER_ID: 'ctl-1' });
    expect(read).toThrow(ConfigError);
    expect(read).toThrow(/^PODFLEET_CONTROLLER_ID: must start with podfleet-controller/);
    expect(readServeConfig({ PODFLEET_CONTROLLER_ID: 'podfleet-controller-b' })).toMatchObject({
      PODFLEET_CONTROLLER_ID: 'podfleet-controller-b',
    });
  });
});
