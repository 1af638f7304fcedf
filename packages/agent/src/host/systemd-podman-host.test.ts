import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  SystemdPodmanHost,
  commandError,
  parseAutoUpdateRows,
  parseContainerInspect,
  parseShowProperties,
  systemdTimestamp,
  unitStatusFrom,
  type CommandResult,
  type CommandRunner,
} from './systemd-podman-host.js';

const ID = 'a'.repeat(64);
const IMAGE = 'b'.repeat(64);

describe('parsing systemctl show', () => {
  it('reads a running Type=notify service', () => {
    const properties = parseShowProperties(
      [
        'MainPID=369',
        'NRestarts=2',
        'Result=success',
        'LoadState=loaded',
        'ActiveState=active',
        'SubState=running',
        'UnitFileState=generated',
        'NeedDaemonReload=no',
        'ActiveEnterTimestamp=Sun 2026-11-29 08:00:05.123456 UTC',
        '',
      ].join('\n'),
    );
    expect(unitStatusFrom('web.service', properties)).toEqual({
      unit: 'web.service',
      load: 'loaded',
      active: 'active',
      sub: 'running',
      result: 'success',
      restarts: 2,
      activeSince: '2026-11-29T08:00:05.123Z',
      mainPid: 369,
      fileState: 'generated',
      needsReload: false,
    });
  });

  it('reads a unit systemd does not know, and a socket without MainPID or NRestarts', () => {
    const missing = parseShowProperties(
      'LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\nNeedDaemonReload=no\nResult=success\nMainPID=0\nNRestarts=0\n',
    );
    expect(unitStatusFrom('gone.service', missing)).toMatchObject({
      load: 'not-found',
      fileState: 'not-found',
      restarts: 0,
      mainPid: 0,
    });
    expect(unitStatusFrom('gone.service', missing).jobQueued).toBeUndefined();
    const queued = parseShowProperties('LoadState=loaded\nActiveState=inactive\nJob=1234\n');
    expect(unitStatusFrom('web.service', queued)).toMatchObject({ jobQueued: true });
    const socket = parseShowProperties(
      'LoadState=loaded\nActiveState=active\nSubState=listening\nResult=success\nUnitFileState=enabled\nNeedDaemonReload=yes\n',
    );
    expect(unitStatusFrom('web.socket', socket)).toMatchObject({
      active: 'active',
      sub: 'listening',
      restarts: 0,
      mainPid: 0,
      fileState: 'enabled',
      needsReload: true,
    });
  });

  it('maps the other load and unit file states onto what podfleet acts on', () => {
    const status = (load: string, fileState: string) =>
      unitStatusFrom(
        'x.service',
        parseShowProperties(`LoadState=${load}\nActiveState=inactive\nUnitFileState=${fileState}`),
      );
    expect(status('masked', 'masked')).toMatchObject({ load: 'bad-setting', fileState: 'masked' });
    expect(status('bad-setting', 'static').load).toBe('bad-setting');
    expect(status('loaded', 'enabled-runtime').fileState).toBe('enabled');
    expect(status('loaded', 'linked').fileState).toBe('enabled');
    expect(status('loaded', 'indirect').fileState).toBe('disabled');
    expect(status('loaded', 'transient').fileState).toBe('generated');
  });

  it('reads ActiveEnterTimestamp in UTC and unix styles; empty (never active) is absent', () => {
    expect(systemdTimestamp('Sun 2026-11-29 08:00:05 UTC')).toBe('2026-11-29T08:00:05.000Z');
    expect(systemdTimestamp('Sun 2026-11-29 08:00:05.000999 UTC')).toBe('2026-11-29T08:00:05.000Z');
    expect(systemdTimestamp('@1795939205')).toBe('2026-11-29T08:00:05.000Z');
    expect(systemdTimestamp('')).toBeUndefined();
    // A local zone (an older systemctl that ignored --timestamp=) cannot be placed: left out.
    expect(systemdTimestamp('Sun 2026-11-29 09:00:05 CET')).toBeUndefined();
    const never = parseShowProperties(
      'LoadState=loaded\nActiveState=inactive\nActiveEnterTimestamp=\n',
    );
    expect(unitStatusFrom('x.service', never)).not.toHaveProperty('activeSince');
  });

  it('keeps a value that itself holds "="', () => {
    expect(parseShowProperties('Environment=A=1 B=2\n').get('Environment')).toBe('A=1 B=2');
  });

  it('refuses an ActiveState systemd does not have', () => {
    expect(() =>
      unitStatusFrom('x.service', parseShowProperties('LoadState=loaded\nActiveState=weird\n')),
    ).toThrow('systemctl show x.service: ActiveState=weird');
  });
});

describe('parsing podman container inspect', () => {
  const inspect = (state: Record<string, unknown>) =>
    JSON.stringify([{ Id: ID, Image: IMAGE, State: state }]);

  it('reads id, image id and Podman 5 health', () => {
    expect(
      parseContainerInspect(
        inspect({ Status: 'running', Running: true, Health: { Status: 'healthy' } }),
      ),
    ).toEqual({ id: ID, imageId: IMAGE, health: 'healthy' });
  });

  it('reads Podman 4 Healthcheck, and none without a check', () => {
    expect(
      parseContainerInspect(inspect({ Status: 'running', Healthcheck: { Status: 'starting' } }))
        ?.health,
    ).toBe('starting');
    expect(
      parseContainerInspect(inspect({ Status: 'running', Health: { Status: '' } }))?.health,
    ).toBe('none');
  });

  it('reports no container once its process has exited', () => {
    expect(parseContainerInspect(inspect({ Status: 'exited', Running: false }))).toBeUndefined();
  });
});

describe('parsing podman auto-update', () => {
  const row = (updated: string) =>
    JSON.stringify({
      Unit: 'web.service',
      Container: '0123456789ab (web)',
      ContainerName: 'web',
      ContainerID: '0123456789ab'.padEnd(64, '0'),
      Image: 'localhost/podfleet/web:latest',
      Policy: 'local',
      Updated: updated,
    });

  it("reads {{json .}} lines into the event's rows", () => {
    expect(parseAutoUpdateRows(`${row('pending')}\n${row('rolled back')}\n`)).toEqual([
      {
        unit: 'web.service',
        container: '0123456789ab (web)',
        image: 'localhost/podfleet/web:latest',
        policy: 'local',
        updated: 'pending',
      },
      expect.objectContaining({ updated: 'rolled back' }),
    ]);
  });

  it('reads a JSON array (--format json) and nothing at all', () => {
    expect(parseAutoUpdateRows(`[${row('true')}]`)).toHaveLength(1);
    expect(parseAutoUpdateRows('\n')).toEqual([]);
  });

  it('refuses a result Podman does not give', () => {
    expect(() => parseAutoUpdateRows(row('maybe'))).toThrow(/podman auto-update: unexpected row/);
  });
});

describe('commandError', () => {
  it('is one line: the command and the last lines of stderr', () => {
    const result: CommandResult = {
      code: 125,
      stdout: '',
      stderr:
        'time="x" level=warning msg="one"\nsecond\nthird\nError: localhost/x: image not known\n',
    };
    const error = commandError(['podman', 'pull', 'localhost/x'], result);
    expect(error.message).toBe(
      'podman pull localhost/x: second; third; Error: localhost/x: image not known',
    );
  });

  it('names the exit code when the command said nothing', () => {
    expect(commandError(['false'], { code: 1, stdout: '', stderr: '' }).message).toBe(
      'false: exit 1',
    );
  });
});

/** A device whose commands are answered by `answer`; every argv is recorded. */
function fakeHost(root: string, answer: (argv: readonly string[]) => Partial<CommandResult>) {
  const calls: string[][] = [];
  const run: CommandRunner = async (argv) => {
    calls.push([...argv]);
    return { code: 0, stdout: '', stderr: '', ...answer(argv) };
  };
  return { calls, host: new SystemdPodmanHost({ run, root, home: '/home/edge' }) };
}

describe('SystemdPodmanHost on a fake device', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'podfleet-host-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes unit files atomically under the root, lists and removes them', async () => {
    const { host } = fakeHost(root, () => ({}));
    await host.writeUnitFile({ name: 'web.container', kind: 'quadlet', contents: '[Container]\n' });
    await host.writeUnitFile({ name: 'web.socket', kind: 'systemd', contents: '[Socket]\n' });
    await host.writeUnitFile({ name: 'web.socket', kind: 'systemd', contents: '[Socket]\nX=1\n' });
    // What systemctl enable adds, and what is not podfleet's, stays out of the list.
    const system = join(root, 'etc/systemd/system');
    await mkdir(join(system, 'sockets.target.wants'));
    await symlink('/dev/null', join(system, 'masked.service'));
    await writeFile(join(system, 'notes.txt'), 'x');

    expect(await readFile(join(root, 'etc/containers/systemd/web.container'), 'utf8')).toBe(
      '[Container]\n',
    );
    expect(await host.listUnitFiles()).toEqual([
      { name: 'web.container', kind: 'quadlet', contents: '[Container]\n' },
      { name: 'web.socket', kind: 'systemd', contents: '[Socket]\nX=1\n' },
    ]);
    // No temporary file is left beside them.
    expect((await readdir(system)).sort()).toEqual([
      'masked.service',
      'notes.txt',
      'sockets.target.wants',
      'web.socket',
    ]);
    expect(await host.readUnitFile('systemd', 'masked.service')).toBeUndefined();

    await host.removeUnitFile('systemd', 'web.socket');
    await host.removeUnitFile('systemd', 'web.socket');
    expect(await host.readUnitFile('systemd', 'web.socket')).toBeUndefined();
  });

  it('puts user-scope units under $HOME and runs systemctl --user', async () => {
    const calls: string[][] = [];
    const host = new SystemdPodmanHost({
      scope: 'user',
      root,
      home: '/home/edge',
      run: async (argv) => {
        calls.push([...argv]);
        return { code: 0, stdout: '', stderr: '' };
      },
    });
    await host.writeUnitFile({ name: 'web.service', kind: 'systemd', contents: '[Service]\n' });
    expect(await readFile(join(root, 'home/edge/.config/systemd/user/web.service'), 'utf8')).toBe(
      '[Service]\n',
    );
    await host.daemonReload();
    expect(calls).toEqual([['systemctl', '--user', 'daemon-reload']]);
  });

  it('refuses file names that are not unit files of their kind', async () => {
    const { host } = fakeHost(root, () => ({}));
    await expect(
      host.writeUnitFile({ name: '../evil.service', kind: 'systemd', contents: '' }),
    ).rejects.toThrow('not a systemd unit file name: ../evil.service');
    await expect(
      host.writeUnitFile({ name: 'web.container', kind: 'systemd', contents: '' }),
    ).rejects.toThrow('not a systemd unit file name');
  });

  it('starts with --no-block and returns once systemd runs the new invocation', async () => {
    let shows = 0;
    const { host, calls } = fakeHost(root, (argv) => {
      if (argv[1] !== 'show') return {};
      shows++;
      // Before: the old run. Then the job waits (stop phase), then a new invocation begins.
      if (shows === 1) return { stdout: 'InvocationID=old\n' };
      if (shows === 2) return { stdout: 'InvocationID=old\nJob=7\n' };
      return { stdout: 'InvocationID=new\nJob=7\n' };
    });
    await host.restart('web.service');
    expect(calls.map((argv) => argv.slice(1).join(' '))).toEqual([
      'show -p InvocationID web.service',
      'restart --no-block web.service',
      'show -p InvocationID,Job web.service',
      'show -p InvocationID,Job web.service',
    ]);
  });

  it('reports a refused start as one line naming the command', async () => {
    const { host } = fakeHost(root, (argv) =>
      argv[1] === 'start'
        ? { code: 5, stderr: 'Failed to start web.service: Unit web.service not found.\n' }
        : { stdout: 'InvocationID=\n' },
    );
    await expect(host.start('web.service')).rejects.toThrow(
      'systemctl start --no-block web.service: Failed to start web.service: Unit web.service not found.',
    );
  });

  it('refuses a unit or image that a tool would read as an option', async () => {
    const { host, calls } = fakeHost(root, () => ({}));
    await expect(host.stop('--all')).rejects.toThrow('not a unit name: --all');
    await expect(host.pullImage('--help')).rejects.toThrow('not an image reference: --help');
    expect(calls).toEqual([]);
  });

  it('finds the container of a Quadlet unit through %t/%N.cid, and of a service through %t/%n.ctr-id', async () => {
    await mkdir(join(root, 'run'), { recursive: true });
    await writeFile(join(root, 'run/q.cid'), `${ID}\n`);
    await writeFile(join(root, 'run/s.service.ctr-id'), ID);
    const { host, calls } = fakeHost(root, (argv) => {
      if (argv[0] === 'systemctl') {
        return { stdout: 'LoadState=loaded\nActiveState=active\nSubState=running\nMainPID=9\n' };
      }
      return { stdout: JSON.stringify([{ Id: ID, Image: IMAGE, State: { Status: 'running' } }]) };
    });
    expect((await host.unitStatus('q.service')).container).toEqual({
      id: ID,
      imageId: IMAGE,
      health: 'none',
    });
    expect((await host.unitStatus('s.service')).container?.imageId).toBe(IMAGE);
    // Timestamps in UTC, whatever the device's time zone.
    expect(calls[0]).toEqual([
      'systemctl',
      'show',
      '--timestamp=us+utc',
      '-p',
      'LoadState,ActiveState,SubState,Result,NRestarts,MainPID,UnitFileState,NeedDaemonReload,ActiveEnterTimestamp,Job',
      'q.service',
    ]);
    expect(calls.filter((argv) => argv[0] === 'podman')).toEqual([
      ['podman', 'container', 'inspect', ID],
      ['podman', 'container', 'inspect', ID],
    ]);
  });

  it('falls back to the container name in the unit file, and none once it is gone', async () => {
    const { host } = fakeHost(root, (argv) => {
      if (argv[0] === 'systemctl') return { stdout: 'LoadState=loaded\nActiveState=activating\n' };
      return { code: 125, stderr: 'Error: no such container web\n' };
    });
    await host.writeUnitFile({
      name: 'web.container',
      kind: 'quadlet',
      contents: '[Container]\nImage=localhost/web:1\nContainerName=web\n',
    });
    expect((await host.unitStatus('web.service')).container).toBeUndefined();
  });

  it('tells a missing image from a broken podman', async () => {
    const { host } = fakeHost(root, (argv) =>
      argv.includes('localhost/missing:1')
        ? { code: 125, stderr: 'Error: localhost/missing:1: image not known\n' }
        : { code: 125, stderr: 'Error: database is locked\n' },
    );
    expect(await host.imageId('localhost/missing:1')).toBeUndefined();
    await expect(host.imageId('localhost/web:1')).rejects.toThrow(
      'podman image inspect --format {{.Id}} localhost/web:1: Error: database is locked',
    );
  });

  it('returns the rows of an auto-update that exits 125, and throws when there are none', async () => {
    const row = JSON.stringify({
      Unit: 'web.service',
      Container: 'abc (web)',
      Image: 'localhost/web:1',
      Policy: 'local',
      Updated: 'failed',
    });
    const { host, calls } = fakeHost(root, () => ({ code: 125, stdout: `${row}\n`, stderr: 'x' }));
    expect(await host.autoUpdate({ dryRun: true })).toEqual([
      expect.objectContaining({ updated: 'failed' }),
    ]);
    expect(calls[0]).toEqual([
      'podman',
      'auto-update',
      '--format',
      '{{json .}}',
      '--dry-run',
      '--rollback=true',
    ]);
    const broken = fakeHost(root, () => ({
      code: 125,
      stderr: 'Error: dial unix /run/systemd/private\n',
    }));
    await expect(broken.host.autoUpdate({ dryRun: false, rollback: false })).rejects.toThrow(
      'podman auto-update --format {{json .}} --rollback=false: Error: dial unix /run/systemd/private',
    );
  });

  it('reads versions and journal lines', async () => {
    const { host } = fakeHost(root, (argv) => {
      if (argv[0] === 'podman') return { stdout: 'podman version 5.4.2\n' };
      if (argv[0] === 'systemctl')
        return { stdout: 'systemd 257 (257.13-1~deb13u1)\n+PAM +AUDIT\n' };
      return { stdout: argv.includes('quiet.service') ? '-- No entries --\n' : 'one\ntwo\n' };
    });
    expect(await host.podmanVersion()).toBe('5.4.2');
    expect(await host.systemdVersion()).toBe('257');
    expect(await host.journal('web.service', 2)).toEqual(['one', 'two']);
    expect(await host.journal('quiet.service', 5)).toEqual([]);
    expect(await host.journal('web.service', 0)).toEqual([]);
  });
});
