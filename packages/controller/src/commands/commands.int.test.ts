import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups, MOSQUITTO, mustRun, uniquePrefix } from '../rollouts/e2e/harness.js';
import { fleetOn } from '../rollouts/e2e/sim-fleet.js';
import { CommandTimeout, DeviceCommands } from './device-commands.js';

const V1 = 'registry.example/acme/web:1.0';
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

/** A controller, two simulated devices running web, and the operator's CLI against them. */
const twoDevices = () => fleetOn(cleanups, { name: 'cmd', n: 2, image: V1 });

describe('device commands over MQTT (cmd → cmd/res)', () => {
  it('tails a service’s logs, dry-runs auto-update and restarts a service through the CLI', async () => {
    const { e, ids } = await twoDevices();
    const logs = await mustRun(e.cli('logs', ids[0]!, 'web', '--lines', '5', '--json'), 'logs');
    const result = JSON.parse(logs.stdout) as { type: string; service: string; lines: string[] };
    expect(result).toMatchObject({ type: 'logs', service: 'web' });
    expect(result.lines.length).toBeGreaterThan(0);
    expect(result.lines.length).toBeLessThanOrEqual(5);

    const dry = await mustRun(e.cli('autoupdate', ids[1]!, '--dry-run'), 'autoupdate');
    expect(dry.stdout).toMatch(/^UNIT\s+CONTAINER\s+IMAGE\s+POLICY\s+UPDATED\n/);

    const restart = await mustRun(e.cli('restart', ids[0]!, 'web'), 'restart');
    expect(restart.stdout).toBe(`web on ${ids[0]}: restarted, ready\n`);
  });

  it('refuses a device that is unknown or offline, and a service the device does not run', async () => {
    const { e, ids } = await twoDevices();
    const unknown = await e.cli('logs', 'no-such-device', 'web');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toBe('podfleet: 404 device no-such-device not found\n');
    const other = await e.cli('logs', ids[0]!, 'db');
    expect(other.code).not.toBe(0);
    expect(other.stderr).toBe(`podfleet: 404 service db on device ${ids[0]} not found\n`);
    await e.controller.db.prisma.device.update({ where: { id: ids[1]! }, data: { online: false } });
    const offline = await e.cli('autoupdate', ids[1]!);
    expect(offline.stderr).toBe(`podfleet: 409 device ${ids[1]} is offline\n`);
  });

  it('gives up on a device that does not answer, saying so in one line', async () => {
    const { connectBroker } = await import('../mqtt/connect.js');
    const session = await connectBroker(MOSQUITTO, { clientId: `pf-test-${uniquePrefix('c')}` });
    cleanups.add(() => session.client.endAsync());
    const commands = new DeviceCommands(session.client);
    await commands.start();
    const silent = uniquePrefix('silent');
    const waiting = commands.send(silent, { type: 'logs', service: 'web', lines: 1 }, 300);
    await expect(waiting).rejects.toBeInstanceOf(CommandTimeout);
    await expect(waiting).rejects.toThrow(`device ${silent} did not answer within 0.3 s`);
    commands.close();
  });
});
