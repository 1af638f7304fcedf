import { describe, expect, it } from 'vitest';
import { parseUnitFile, unitValues } from '@podfleet/shared';
import { renderAgentUnit } from './agent-unit-file.js';

describe('renderAgentUnit', () => {
  it('is deploy/podfleet-agent.service with the defaults (vitest -u writes it again)', async () => {
    await expect(renderAgentUnit()).toMatchFileSnapshot('../../deploy/podfleet-agent.service');
  });

  it('makes a Type=notify unit that restarts always and has a watchdog', () => {
    const unit = parseUnitFile(renderAgentUnit({ watchdogSec: 4, restartSec: 1 }));
    const service = (key: string) => unitValues(unit, 'Service', key);
    expect(service('Type')).toEqual(['notify']);
    expect(service('NotifyAccess')).toEqual(['main']);
    expect(service('Restart')).toEqual(['always']);
    expect(service('RestartSec')).toEqual(['1']);
    expect(service('WatchdogSec')).toEqual(['4']);
    // The agent says READY=1 at the latest 30 s after start; systemd waits three times that.
    expect(service('TimeoutStartSec')).toEqual(['90']);
    expect(service('ExecStart')).toEqual([
      '/usr/bin/env node /opt/podfleet/agent/bin/podfleet-agent.js run --config /etc/podfleet/agent.yaml',
    ]);
    // Node's flags come by NODE_OPTIONS: ExecStart stays `node ENTRY` (enrollment checks it).
    expect(service('Environment')).toEqual(['NODE_OPTIONS=--max-semi-space-size=1']);
    expect(unitValues(unit, 'Unit', 'After')).toEqual(['network-online.target']);
    expect(unitValues(unit, 'Install', 'WantedBy')).toEqual(['multi-user.target']);
  });

  it('takes the install layout as options', () => {
    const unit = parseUnitFile(
      renderAgentUnit({ entry: '/srv/agent/podfleet-agent.js', config: '/etc/pf/a.yaml' }),
    );
    expect(unitValues(unit, 'Service', 'ExecStart')).toEqual([
      '/usr/bin/env node /srv/agent/podfleet-agent.js run --config /etc/pf/a.yaml',
    ]);
  });

  it('refuses what systemd would read differently, naming the option', () => {
    expect(() => renderAgentUnit({ config: '/etc/podfleet/my agent.yaml' })).toThrow(
      'config: must be an absolute path of letters, digits and ._/+- only',
    );
    expect(() => renderAgentUnit({ entry: '/opt/%n.js' })).toThrow('entry: must be');
    expect(() => renderAgentUnit({ entry: 'agent.js' })).toThrow('entry: must be');
    expect(() => renderAgentUnit({ watchdogSec: 0 })).toThrow(
      'watchdogSec: must be a whole number of seconds, at least 1',
    );
    expect(() => renderAgentUnit({ restartSec: 1.5 })).toThrow('restartSec: must be');
  });
});
