import { describe, expect, it } from 'vitest';
import { controllerSubscriptions, parseDeviceTopic, topics } from './topics.js';

describe('MQTT topics', () => {
  it('names the v1 device topics of docs/contract.md', () => {
    expect(topics.desired('edge-1')).toBe('pf/v1/dev/edge-1/desired');
    expect(topics.state('edge-1')).toBe('pf/v1/dev/edge-1/state');
    expect(topics.events('edge-1')).toBe('pf/v1/dev/edge-1/events');
    expect(topics.online('edge-1')).toBe('pf/v1/dev/edge-1/online');
    expect(topics.cmd('edge-1')).toBe('pf/v1/dev/edge-1/cmd');
    expect(topics.cmdResult('edge-1')).toBe('pf/v1/dev/edge-1/cmd/res');
  });

  it('subscribes controllers through the podfleet shared subscription group', () => {
    expect(controllerSubscriptions.state).toBe('$share/podfleet/pf/v1/dev/+/state');
  });

  it('reads the device and kind back from a topic', () => {
    expect(parseDeviceTopic('pf/v1/dev/edge-1/cmd/res')).toEqual({
      device: 'edge-1',
      kind: 'cmd/res',
    });
    expect(parseDeviceTopic('pf/v1/dev/edge-1/other')).toBeUndefined();
    expect(parseDeviceTopic('pf/v2/dev/edge-1/state')).toBeUndefined();
  });
});
