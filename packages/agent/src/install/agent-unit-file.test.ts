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

  it('runs as the account in user scope, after its service manager, lingering set as root', () => {
    const unit = parseUnitFile(renderAgentUnit({ user: { name: 'edge', uid: 1001 } }));
    const service = (key: string) => unitValues(unit, 'Service', key);
    expect(service('User')).toEqual(['edge']);
    expect(service('ExecStartPre')).toEqual(['+/usr/bin/loginctl enable-linger edge']);
    expect(service('Environment')).toEqual([
      'XDG_RUNTIME_DIR=/run/user/1001',
      'DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1001/bus',
      'NODE_OPTIONS=--max-semi-space-size=1',
    ]);
    // Not root: systemd-notify cannot send with the agent's pid (docs/device-lab.md).
    expect(service('NotifyAccess')).toEqual(['all']);
    // newuidmap and newgidmap are setuid: rootless Podman fails under NoNewPrivileges, which
    // systemd implies from each seccomp option for a unit that runs as a user.
    for (const key of [
      'NoNewPrivileges',
      'LockPersonality',
      'RestrictRealtime',
      'SystemCallArchitectures',
      'SystemCallFilter',
      'MemoryDenyWriteExecute',
    ]) {
      expect(service(key), key).toEqual([]);
    }
    expect(unitValues(unit, 'Unit', 'Wants')).toEqual([
      'network-online.target',
      'user@1001.service',
    ]);
    expect(unitValues(unit, 'Unit', 'After')).toEqual([
      'network-online.target',
      'user@1001.service',
    ]);
    expect(service('StateDirectory')).toEqual(['podfleet']);

    const system = parseUnitFile(renderAgentUnit());
    expect(unitValues(system, 'Service', 'User')).toEqual([]);
    expect(unitValues(system, 'Service', 'ExecStartPre')).toEqual([]);
    expect(unitValues(system, 'Service', 'NoNewPrivileges')).toEqual(['yes']);
  });

  it('refuses an account systemd or the runtime directory would get wrong', () => {
    expect(() => renderAgentUnit({ user: { name: 'Edge User', uid: 1000 } })).toThrow(
      'user.name: must be a user name (a-z, 0-9, _ and -), not Edge User',
    );
    expect(() => renderAgentUnit({ user: { name: '-edge', uid: 1000 } })).toThrow('user.name');
    expect(() => renderAgentUnit({ user: { name: 'edge', uid: 0 } })).toThrow(
      "user.uid: must be the account's uid, a whole number above 0",
    );
    expect(() => renderAgentUnit({ user: { name: 'edge', uid: 1.5 } })).toThrow('user.uid');
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
