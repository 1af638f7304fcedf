import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceCommands } from '../commands/device-commands.js';
import { commandRoutes } from '../commands/routes.js';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';
import { apiRoutes } from '../http/routes.js';
import { runCliCaptured } from './testing.js';

const WEB = 'registry.example/acme/web:1.8';
const REJECTED = 'registry.example/acme/web:1.9';

// What an operator reaches for in a day of running a fleet, through the CLI against a real
// controller on a real port.
describe('podfleet verbs over the existing API', () => {
  let api: ApiHarness;
  let connection: string[];

  const run = (...argv: string[]) => runCliCaptured([...argv, ...connection]);

  beforeAll(async () => {
    api = await openApiHarness();
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    connection = ['--url', url, '--token', api.tokens.admin];
    await api.prisma.device.createMany({
      data: [
        {
          id: 'pi-1',
          labels: { tier: 'edge', site: 'berlin' },
          online: true,
          agentVersion: '0.3.0',
          podmanVersion: '5.2.0',
          systemdVersion: '255',
          arch: 'arm64',
          unitStyle: 'quadlet',
          appliedGeneration: 2,
          desiredGeneration: 3,
          lastState: {
            device: 'pi-1',
            generation: 2,
            reportedAt: '2026-12-01T10:00:00.000Z',
            agent: { version: '0.3.0' },
            host: { podman: '5.2.0', systemd: '255', arch: 'arm64', unitStyle: 'quadlet' },
            services: [
              {
                name: 'web',
                image: WEB,
                unit: { active: 'active', sub: 'running', restarts: 4, activeSince: '2026-12-01T09:00:00.000Z' }, // prettier-ignore
                ready: true,
                health: 'ready',
                rejected: {
                  image: REJECTED,
                  imageId: 'a'.repeat(64),
                  at: '2026-12-01T08:00:00.000Z',
                  reason: 'not ready in 5m',
                },
              },
            ],
          },
        },
        { id: 'pi-2', labels: { tier: 'edge' } },
      ],
    });
    await api.call('admin', 'POST', '/v1/groups', { name: 'edge', selector: 'tier=edge' });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('devices show: labels, groups, versions and each service from the last report', async () => {
    const shown = await run('devices', 'show', 'pi-1');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^LABELS\s+site=berlin,tier=edge$/m);
    expect(shown.stdout).toMatch(/^GROUPS\s+edge$/m);
    expect(shown.stdout).toMatch(/^GENERATION\s+applied 2 of 3$/m);
    expect(shown.stdout).toMatch(/^AGENT\s+0\.3\.0$/m);
    expect(shown.stdout).toMatch(/^HOST\s+podman 5\.2\.0, systemd 255, arm64, quadlet units$/m);
    expect(shown.stdout).toMatch(
      /^SERVICE\s+IMAGE\s+HEALTH\s+READY\s+RESTARTS\s+ACTIVE SINCE\s+REJECTED$/m,
    );
    expect(shown.stdout).toContain(
      `web      ${WEB}  ready   yes    4         2026-12-01T09:00:00.000Z  ${REJECTED} (not ready in 5m)`,
    );
    const json = JSON.parse((await run('devices', 'show', 'pi-2', '--json')).stdout);
    expect(json).toMatchObject({ id: 'pi-2', groups: ['edge'], lastState: null });
    expect((await run('devices', 'show', 'pi-2')).stdout).toMatch(/no services reported\n$/);
  });

  it('devices show: an unknown device is a 404 naming it', async () => {
    expect(await run('devices', 'show', 'pi-9')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'podfleet: 404 device pi-9 not found (did you mean pi-1, pi-2?)\n',
    });
  });

  it('devices label: k=v sets, k- removes', async () => {
    expect(await run('devices', 'label', 'pi-2', 'site=paris', 'rack=3')).toEqual({
      code: 0,
      stdout: 'pi-2 labels: rack=3,site=paris,tier=edge\n',
      stderr: '',
    });
    expect((await run('devices', 'label', 'pi-2', 'rack-')).stdout).toBe(
      'pi-2 labels: site=paris,tier=edge\n',
    );
    const audit = await api.prisma.auditEntry.findMany({ where: { action: 'device.label' } });
    expect(audit).toHaveLength(2);
  });

  it('devices label: refuses what is neither k=v nor k-, and a label the controller refuses', async () => {
    expect(await run('devices', 'label', 'pi-2', 'site')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'podfleet: LABEL: not k=v or k-: "site"\n',
    });
    const bad = await run('devices', 'label', 'pi-2', 'Bad Key=x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe('podfleet: 400 LABEL Bad Key: Invalid key in record\n');
  });

  it('devices rm: forgets the device, and a second rm is a 404', async () => {
    await api.prisma.device.create({ data: { id: 'pi-gone', labels: {} } });
    expect(await run('devices', 'rm', 'pi-gone')).toEqual({
      code: 0,
      stdout: 'deleted device pi-gone\n',
      stderr: '',
    });
    expect(await api.prisma.device.count({ where: { id: 'pi-gone' } })).toBe(0);
    expect(await run('devices', 'rm', 'pi-gone')).toMatchObject({
      code: 1,
      stderr: 'podfleet: 404 device pi-gone not found\n',
    });
  });
});

describe('podfleet groups edit|rm and pins ls|rm', () => {
  let api: ApiHarness;
  let connection: string[];
  const digest = (name: string) => `registry.example/acme/${name}@sha256:${'f'.repeat(64)}`;

  const run = (...argv: string[]) => runCliCaptured([...argv, ...connection]);

  beforeAll(async () => {
    api = await openApiHarness();
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    connection = ['--url', url, '--token', api.tokens.admin];
    await api.prisma.device.create({ data: { id: 'pi-1', labels: { site: 'berlin' } } });
    for (const name of ['web', 'api']) {
      const spec = { name, image: `registry.example/acme/${name}:1` };
      expect((await api.call('admin', 'POST', '/v1/services', { spec })).statusCode).toBe(201);
    }
    await api.call('admin', 'POST', '/v1/groups', { name: 'berlin', selector: 'site=berlin' });
    await api.call('admin', 'POST', '/v1/groups', { name: 'lab', members: ['pi-1'] });
    await api.call('admin', 'PUT', '/v1/pins', { group: 'lab', service: 'web', image: digest('web') }); // prettier-ignore
    await api.call('admin', 'PUT', '/v1/pins', { device: 'pi-1', service: 'api', image: digest('api') }); // prettier-ignore
  });
  afterAll(async () => {
    await api?.close();
  });

  it('groups edit: a new selector and priority, then members only', async () => {
    expect(
      await run(
        'groups',
        'edit',
        'berlin',
        '--selector',
        'site in (berlin,potsdam)',
        '--priority',
        '20',
      ),
    ).toEqual({
      // prettier-ignore
      code: 0,
      stdout: 'group berlin: selector site in (berlin,potsdam), priority 20\n',
      stderr: '',
    });
    expect((await run('groups', 'edit', 'berlin', '--no-selector')).stdout).toBe(
      'group berlin: selector none, priority 20\n',
    );
    expect(await api.prisma.auditEntry.count({ where: { action: 'group.update' } })).toBe(2);
  });

  it('groups edit: refuses nothing to change, a bad selector, an unknown group', async () => {
    expect(await run('groups', 'edit', 'berlin')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'podfleet: give --selector, --no-selector or --priority\n',
    });
    expect(await run('groups', 'edit', 'berlin', '--selector', 'site in (x')).toMatchObject({
      code: 2,
      stderr: "podfleet: 400 --selector: expected ',' or ')' at 11\n",
    });
    expect(await run('groups', 'edit', 'berlin', '--priority', 'high')).toMatchObject({
      code: 2,
      stderr: 'podfleet: --priority: must be a whole number, not high\n',
    });
    expect(await run('groups', 'edit', 'nosuch', '--priority', '1')).toMatchObject({
      code: 1,
      stderr: 'podfleet: 404 group nosuch not found\n',
    });
  });

  it('pins ls: every pin, or by service and group or device', async () => {
    const all = await run('pins', 'ls');
    expect(all.stdout.split('\n')[0]).toMatch(/^ID\s+ON\s+SERVICE\s+IMAGE\s+CREATED$/);
    expect(all.stdout).toMatch(new RegExp(`^\\S+\\s+group/lab\\s+web\\s+${digest('web').replace(/[.@]/g, '\\$&')}\\s`, 'm')); // prettier-ignore
    expect(all.stdout).toMatch(/^\S+\s+device\/pi-1\s+api\s/m);
    const byDevice = JSON.parse((await run('pins', 'ls', '--device', 'pi-1', '--json')).stdout);
    expect(byDevice.map((pin: { service: string }) => pin.service)).toEqual(['api']);
    const byService = JSON.parse((await run('pins', 'ls', '--service', 'web', '--json')).stdout);
    expect(byService.map((pin: { group: string }) => pin.group)).toEqual(['lab']);
    expect(await run('pins', 'ls', '--group', 'lab', '--device', 'pi-1')).toMatchObject({
      code: 2,
      stderr: 'podfleet: --group and --device: give one or neither\n',
    });
  });

  it('pins rm: removes a pin by id; an unknown id is a 404', async () => {
    const [pin] = JSON.parse((await run('pins', 'ls', '--device', 'pi-1', '--json')).stdout);
    expect(await run('pins', 'rm', pin.id)).toEqual({
      code: 0,
      stdout: `removed pin ${pin.id}\n`,
      stderr: '',
    });
    expect(await api.prisma.pin.count({ where: { id: pin.id } })).toBe(0);
    expect((await run('pins', 'rm', pin.id)).code).toBe(1);
  });

  it('groups rm: refused while the group pins a service, done with --force', async () => {
    expect(await run('groups', 'rm', 'lab')).toMatchObject({
      code: 1,
      stderr: 'podfleet: 409 group lab still pins web; remove them first or pass force=true\n',
    });
    expect(await run('groups', 'rm', 'lab', '--force')).toEqual({
      code: 0,
      stdout: 'deleted group lab\n',
      stderr: '',
    });
    expect((await run('groups', 'rm', 'berlin')).stdout).toBe('deleted group berlin\n');
    expect(await api.prisma.group.count()).toBe(0);
  });
});

describe('podfleet audit', () => {
  let api: ApiHarness;
  let connection: string[];

  const run = (...argv: string[]) => runCliCaptured([...argv, ...connection]);

  beforeAll(async () => {
    api = await openApiHarness();
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    connection = ['--url', url, '--token', api.tokens.admin];
    await api.prisma.device.create({ data: { id: 'pi-1', labels: {} } });
    for (const rack of ['1', '2', '3']) await run('devices', 'label', 'pi-1', `rack=${rack}`);
    await api.call('operator', 'POST', '/v1/groups', { name: 'berlin', selector: 'site=berlin' });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('lists changes newest first, as a table', async () => {
    const listed = await run('audit');
    expect(listed.code).toBe(0);
    const lines = listed.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^AT\s+ACTOR\s+ACTION\s+TARGET\s+DETAILS$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/).slice(1, 4))).toEqual([
      ['ci-operator', 'group.create', 'group/berlin'],
      ['ci-admin', 'device.label', 'device/pi-1'],
      ['ci-admin', 'device.label', 'device/pi-1'],
      ['ci-admin', 'device.label', 'device/pi-1'],
    ]);
    expect(lines[2]).toMatch(/\{"labels":\{"rack":"3"\}\}$/);
  });

  it('filters by actor, action and target, and pages to --limit', async () => {
    const json = async (...argv: string[]) =>
      JSON.parse((await run('audit', '--json', ...argv)).stdout) as { details: unknown }[];
    expect(await json('--actor', 'ci-operator')).toHaveLength(1);
    expect(await json('--action', 'group.create', '--target', 'group/berlin')).toHaveLength(1);
    const newest = await json('--target', 'device/pi-1', '--limit', '2');
    expect(newest.map((entry) => entry.details)).toEqual([
      { labels: { rack: '3' } },
      { labels: { rack: '2' } },
    ]);
    expect(await json('--since', '2999-01-01T00:00:00Z')).toEqual([]);
  });

  it('refuses a bad --since or --limit naming the flag, and a token below admin', async () => {
    expect(await run('audit', '--since', 'yesterday')).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/^podfleet: .*--since/),
    });
    expect(await run('audit', '--limit', '0')).toMatchObject({
      code: 2,
      stderr: 'podfleet: --limit: must be at least 1, not 0\n',
    });
    const asViewer = await runCliCaptured(['audit', connection[0]!, connection[1]!, '--token', api.tokens.viewer]); // prettier-ignore
    expect(asViewer).toMatchObject({ code: 1, stderr: 'podfleet: 403 needs role admin; token ci-viewer has viewer\n' }); // prettier-ignore
  });
});

describe('--since takes how long ago as well as an ISO time', () => {
  let api: ApiHarness;
  let connection: string[];

  const run = (...argv: string[]) => runCliCaptured([...argv, ...connection]);
  const ago = (minutes: number) => new Date(Date.now() - minutes * 60_000);

  beforeAll(async () => {
    api = await openApiHarness();
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    connection = ['--url', url, '--token', api.tokens.admin];
    await api.prisma.device.create({ data: { id: 'pi-1', labels: {} } });
    // Received 5 minutes, 3 hours and 2 days ago.
    await api.prisma.deviceEvent.createMany({
      data: [5, 180, 2880].map((minutes, n) => ({
        id: randomUUID(),
        deviceId: 'pi-1',
        type: 'apply',
        at: ago(minutes),
        receivedAt: ago(minutes),
        payload: { type: 'apply', generation: n + 1, result: 'applied' },
      })),
    });
    await api.prisma.auditEntry.createMany({
      data: [5, 180].map((minutes) => ({
        at: ago(minutes),
        actor: 'ci',
        action: 'device.label',
        target: 'device/pi-1',
        details: { minutes },
      })),
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  const generations = async (...argv: string[]) => {
    const listed = await run('events', '--json', ...argv);
    expect(listed.stderr).toBe('');
    return (JSON.parse(listed.stdout) as { payload: { generation: number } }[]).map(
      (event) => event.payload.generation,
    );
  };

  it('events --since 10m, 4h, 3d and ISO', async () => {
    expect(await generations('--since', '10m')).toEqual([1]);
    expect(await generations('--since', '4h')).toEqual([1, 2]);
    expect(await generations('--since', '3d')).toEqual([1, 2, 3]);
    expect(await generations('--since', ago(200).toISOString())).toEqual([1, 2]);
  });

  it('audit --since 1h', async () => {
    const listed = JSON.parse((await run('audit', '--json', '--since', '1h')).stdout);
    expect(listed.map((entry: { details: unknown }) => entry.details)).toEqual([{ minutes: 5 }]);
  });

  it.each([['events'], ['audit']])(
    '%s refuses a --since that is no time, naming it',
    async (verb) => {
      for (const since of ['10', 'soon', '-5m', '10 parsecs']) {
        expect(await run(verb, '--since', since)).toEqual({
          code: 2,
          stdout: '',
          stderr: `podfleet: --since: not a time: ${JSON.stringify(since)} (give how long ago, e.g. 10m, 2h, 3d, or an ISO time, e.g. 2026-12-01T10:00:00Z)\n`,
        });
      }
    },
  );
});

describe('a device or service that does not exist is a 404 naming the close ones', () => {
  let api: ApiHarness;
  let connection: string[];

  const run = (...argv: string[]) => runCliCaptured([...argv, ...connection]);
  const refused = async (argv: string[], stderr: string) =>
    expect(await run(...argv)).toEqual({ code: 1, stdout: '', stderr });

  beforeAll(async () => {
    // Commands are answered by no device here: every case below is refused before one is sent.
    api = await openApiHarness({ routes: [...apiRoutes(), commandRoutes({} as DeviceCommands)] });
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    connection = ['--url', url, '--token', api.tokens.admin];
    const manifest = { services: [{ name: 'web', image: WEB }] };
    await api.prisma.device.createMany({
      data: ['sim-0031', 'sim-0032', 'sim-0131', 'gw-1'].map((id) => ({
        id,
        labels: {},
        online: true,
        desiredManifest: manifest,
      })),
    });
    await api.call('admin', 'POST', '/v1/services', { spec: { name: 'web', image: WEB } });
    await api.call('admin', 'POST', '/v1/groups', { name: 'edge', selector: 'tier=edge' });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('devices show|label|rm: a mistyped device', async () => {
    const near = 'podfleet: 404 device sim-0O31 not found (did you mean sim-0031, sim-0131, sim-0032?)\n'; // prettier-ignore
    await refused(['devices', 'show', 'sim-0O31'], near);
    await refused(['devices', 'label', 'sim-0O31', 'a=b'], near);
    await refused(['devices', 'rm', 'sim-0O31'], near);
    await refused(['devices', 'show', 'nothing-like-it'], 'podfleet: 404 device nothing-like-it not found\n'); // prettier-ignore
  });

  it('logs and restart: a mistyped device or a service the device does not have', async () => {
    await refused(['logs', 'sim-003', 'web'], 'podfleet: 404 device sim-003 not found (did you mean sim-0031, sim-0032, sim-0131?)\n'); // prettier-ignore
    await refused(['logs', 'sim-0031', 'wbe'], 'podfleet: 404 service wbe on device sim-0031 not found (did you mean web?)\n'); // prettier-ignore
    await refused(['logs', 'sim-0031', 'nosuch'], 'podfleet: 404 service nosuch on device sim-0031 not found\n'); // prettier-ignore
    await refused(['restart', 'gw-1', 'webb'], 'podfleet: 404 service webb on device gw-1 not found (did you mean web?)\n'); // prettier-ignore
  });

  it('assign and pin: a mistyped service', async () => {
    await refused(['assign', 'edge', 'wbe'], 'podfleet: 404 service wbe not found (did you mean web?)\n'); // prettier-ignore
    const digest = `registry.example/acme/web@sha256:${'f'.repeat(64)}`;
    await refused(['pin', 'edge', 'weeb', digest], 'podfleet: 404 service weeb not found (did you mean web?)\n'); // prettier-ignore
  });
});
