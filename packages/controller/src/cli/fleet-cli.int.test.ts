import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';
import { runCliCaptured } from './testing.js';

const digest = (name: string) => `registry.example/acme/${name}@sha256:${'f'.repeat(64)}`;

const servicesYaml = (webTag: string) => `name: web
image: registry.example/acme/web:${webTag}
ports: ["8080:8080"]
ready: { timeout: 1m, settle: 15s }
---
name: api
image: registry.example/acme/api:1
health: { cmd: "curl -fsS localhost:9000/", interval: 10s }
`;

// The real API on a real port, driven by the CLI as an operator would: end to end over HTTP.
describe('podfleet against a running controller', () => {
  let api: ApiHarness;
  let dir: string;
  let connection: string[];

  const run = (...argv: string[]) => runCliCaptured([...argv, ...connection]);

  beforeAll(async () => {
    api = await openApiHarness();
    const url = await api.app.listen({ host: '127.0.0.1', port: 0 });
    connection = ['--url', url, '--token', api.tokens.admin];
    dir = await mkdtemp(join(tmpdir(), 'podfleet-cli-'));
    await api.prisma.device.createMany({
      data: [
        { id: 'pi-1', labels: { tier: 'edge', site: 'berlin' }, online: true },
        { id: 'pi-2', labels: { tier: 'edge', site: 'paris' } },
        { id: 'pi-3', labels: { tier: 'gw' } },
      ],
    });
  });
  afterAll(async () => {
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates a group, and refuses a duplicate or a bad selector in one line', async () => {
    const created = await run('groups', 'create', 'edge', '--selector', 'tier=edge', '--priority', '10', '--members', 'pi-3'); // prettier-ignore
    expect(created).toEqual({
      code: 0,
      stdout: 'created group edge (selector tier=edge, priority 10, 1 listed member)\n',
      stderr: '',
    });
    expect(await run('groups', 'create', 'edge')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'podfleet: 409 group edge exists\n',
    });
    expect(await run('groups', 'create', 'bad', '--selector', 'tier in (edge')).toEqual({
      code: 2,
      stdout: '',
      stderr: "podfleet: 400 --selector: expected ',' or ')' at 14\n",
    });
    expect(await run('groups', 'create', 'bad', '--priority', 'high')).toMatchObject({
      code: 2,
      stderr: 'podfleet: --priority: must be a whole number, not high\n',
    });
  });

  it('applies services from YAML: created, then unchanged, then a new revision', async () => {
    const file = join(dir, 'services.yaml');
    await writeFile(file, servicesYaml('1'));
    expect(await run('services', 'apply', '-f', file)).toEqual({
      code: 0,
      stdout: 'web: revision 1 created\napi: revision 1 created\n',
      stderr: '',
    });
    expect((await run('services', 'apply', '-f', file)).stdout).toBe(
      'web: revision 1 unchanged\napi: revision 1 unchanged\n',
    );
    await writeFile(file, servicesYaml('2'));
    const json = await run('services', 'apply', '-f', file, '--json');
    expect(JSON.parse(json.stdout)).toEqual([
      { service: 'web', revision: 2, image: 'registry.example/acme/web:2', created: true },
      { service: 'api', revision: 1, image: 'registry.example/acme/api:1', created: false },
    ]);
  });

  it('stores nothing from a file with a bad spec, and names the field', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'name: worker\nimage: registry.example/w:1\nenv: { A: "x\\ny" }\n');
    expect(await run('services', 'apply', '-f', file)).toEqual({
      code: 2,
      stdout: '',
      stderr: `podfleet: ${file}: env.A: newline not allowed\n`,
    });
    expect(await api.prisma.service.count({ where: { name: 'worker' } })).toBe(0);
  });

  it('assigns the latest revision or a given one', async () => {
    api.fleet.take();
    expect((await run('assign', 'edge', 'web')).stdout).toBe('group edge runs web revision 2\n');
    expect((await run('assign', 'edge', 'api', '--revision', '1')).stdout).toBe(
      'group edge runs api revision 1\n',
    );
    expect(await run('assign', 'edge', 'web', '--revision', '7')).toMatchObject({
      code: 1,
      stderr: 'podfleet: 404 service web revision 7 not found\n',
    });
    expect(api.fleet.take()).toEqual(['group/edge: web revision 2', 'group/edge: api revision 1']);
  });

  it('pins a group or a device by digest, refuses a tag, and unpins', async () => {
    expect((await run('pin', 'edge', 'web', digest('web'))).stdout).toBe(
      `pinned web on group edge to ${digest('web')}\n`,
    );
    expect((await run('pin', '--device', 'pi-1', 'api', digest('api'))).stdout).toBe(
      `pinned api on device pi-1 to ${digest('api')}\n`,
    );
    expect(await run('pin', 'edge', 'web', 'registry.example/acme/web:2')).toEqual({
      code: 2,
      stdout: '',
      stderr: 'podfleet: 400 IMAGE: a pin must be an image by digest (repository@sha256:…)\n',
    });
    expect(await run('pin', 'edge', 'web')).toMatchObject({
      code: 2,
      stderr: 'podfleet: expected GROUP SERVICE IMAGE, got 2 arguments\n',
    });
    expect((await run('pin', '--rm', '--device', 'pi-1', 'api')).stdout).toBe(
      'unpinned api on device pi-1\n',
    );
    expect(await run('pin', '--rm', '--device', 'pi-1', 'api')).toMatchObject({
      code: 1,
      stderr: 'podfleet: 404 no pin of api on device pi-1\n',
    });
    expect(await api.prisma.pin.count()).toBe(1);
  });

  it('lists devices and groups as tables and as JSON', async () => {
    const json = await run('devices', 'ls', '--group', 'edge', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout).map((d: { id: string }) => d.id)).toEqual([
      'pi-1',
      'pi-2',
      'pi-3',
    ]);
    const table = await run('devices', 'ls', '--selector', 'site=berlin');
    expect(table.stdout.split('\n')[0]).toMatch(
      /^ID\s+ONLINE\s+COMPLIANCE\s+GENERATION\s+LAST SEEN\s+LABELS$/,
    );
    // Online, but no manifest and no state report yet: nothing to judge it by.
    expect(table.stdout).toMatch(/^pi-1\s+yes\s+unknown\s+0\/0\s+-\s+site=berlin,tier=edge$/m);
    expect(table.stdout.trim().split('\n')).toHaveLength(2);
    const groups = await run('groups', 'ls');
    expect(groups.stdout).toMatch(/^edge\s+10\s+tier=edge\s+1\s+api@1,web@2\s+web$/m);
    expect((await run('devices', 'ls', '--online', '--offline')).code).toBe(2);
  });

  it('issues a token that works at its role and no further', async () => {
    const created = await run('tokens', 'create', 'ci', '--role', 'operator', '--json');
    const { token } = JSON.parse(created.stdout);
    expect(token).toMatch(/^pft_/);
    const asCi = (...argv: string[]) =>
      runCliCaptured([...argv, '--url', connection[1]!, '--token', token]);
    expect((await asCi('groups', 'ls')).code).toBe(0);
    expect(await asCi('tokens', 'create', 'other', '--role', 'viewer')).toEqual({
      code: 1,
      stdout: '',
      stderr: 'podfleet: 403 needs role admin; token ci has operator\n',
    });
    const bad = await run('tokens', 'create', 'x', '--role', 'root');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^podfleet: option '--role <role>' argument 'root' is invalid/);
    expect(bad.stderr.split('\n')).toHaveLength(2);
  });

  it('shows events newest received first, with a device clock that disagrees beside them', async () => {
    const minute = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, n));
    await api.prisma.deviceEvent.createMany({
      data: [1, 2, 3].map((n) => ({
        id: randomUUID(),
        deviceId: 'pi-1',
        type: 'apply',
        at: n === 2 ? new Date(Date.UTC(2099, 0, 1)) : minute(n),
        receivedAt: minute(n),
        payload: { type: 'apply', generation: n, result: 'applied' },
      })),
    });
    const json = await run('events', '--device', 'pi-1', '--limit', '2', '--json');
    expect(JSON.parse(json.stdout).map((e: { payload: { generation: number } }) => e.payload.generation)).toEqual([3, 2]); // prettier-ignore
    const table = await run('events', '--type', 'apply');
    expect(table.stdout.split('\n').slice(0, 3)).toEqual([
      'RECEIVED                  DEVICE  TYPE   WHAT',
      '2026-01-01T00:03:00.000Z  pi-1    apply  generation 3 applied',
      '2026-01-01T00:02:00.000Z  pi-1    apply  generation 2 applied (device clock: 2099-01-01T00:00:00.000Z)',
    ]);
  });

  it('shows what a device sent with its controls escaped, never acting on the terminal', async () => {
    const hostile = 'boom\x1b[2J\x1b]0;owned\x07\x9b31m\u202eevil\nfake row';
    await api.prisma.device.create({
      data: { id: 'pi-x', labels: { note: 'a\tb' }, agentVersion: hostile },
    });
    await api.prisma.deviceEvent.create({
      data: {
        id: randomUUID(),
        deviceId: 'pi-x',
        type: 'error',
        at: new Date(Date.UTC(2026, 0, 2)),
        receivedAt: new Date(Date.UTC(2026, 0, 2)),
        payload: { type: 'error', service: 'web', message: hostile },
      },
    });
    const table = await run('events', '--device', 'pi-x');
    expect(table.code).toBe(0);
    expect(table.stdout.replaceAll('\n', '')).not.toMatch(/[\p{Cc}\p{Bidi_Control}]/u);
    expect(table.stdout.split('\n')).toEqual([
      'RECEIVED                  DEVICE  TYPE   WHAT',
      '2026-01-02T00:00:00.000Z  pi-x    error  web: boom\\x1b[2J\\x1b]0;owned\\x07\\u009b31m\\u202eevil\\nfake row',
      '',
    ]);
    // JSON keeps the text whole: C0 escaped by JSON itself, C1 and bidi as \u escapes.
    const json = await run('events', '--device', 'pi-x', '--json');
    expect(json.stdout).not.toMatch(/[\x7f-\x9f\u202a-\u202e]/);
    expect(JSON.parse(json.stdout)[0].payload.message).toBe(hostile);
    const devices = await run('devices', 'ls', '--selector', 'note');
    expect(devices.stdout).toMatch(/^pi-x\s+no\s+offline\s+0\/0\s+-\s+note=a\\tb$/m);
    // An error quoting what it was given is one line, its controls shown.
    expect(await runCliCaptured(['render', '-f', '-', '--style', 'x\x1b[2J\ny'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'podfleet: --style: must be service or quadlet, not x\\x1b[2J\\ny\n',
    });
  });

  it('prints help for every command it adds', async () => {
    for (const command of [
      ['devices', 'ls'],
      ['groups', 'create'],
      ['groups', 'ls'],
      ['services', 'apply'],
      ['services', 'ls'],
      ['pin'],
      ['assign'],
      ['tokens', 'create'],
      ['tokens', 'ls'],
      ['tokens', 'revoke'],
      ['events'],
    ]) {
      const help = await runCliCaptured([...command, '--help']);
      expect(help.code, command.join(' ')).toBe(0);
      expect(help.stdout).toMatch(/^Usage: podfleet /);
      expect(help.stdout).toContain('--url <url>');
    }
  });

  it('says in one line when the controller cannot be reached', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    expect(await runCliCaptured(['groups', 'ls', '--url', url, '--token', 't'])).toEqual({
      code: 1,
      stdout: '',
      stderr: `podfleet: cannot reach the controller at ${url}: ECONNREFUSED\n`,
    });
  });
});

/** A port nothing listens on: one the system just gave out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
