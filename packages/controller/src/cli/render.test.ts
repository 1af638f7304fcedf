import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderUnits } from '@podfleet/shared';
import { runCliCaptured } from './testing.js';

const yaml = `
name: web
image: registry.example/acme/web:1.4
env: { GREETING: "hello world" }
ports: ["8080:8080"]
socket: { listen: ["127.0.0.1:8080"] }
`;

describe('podfleet render', () => {
  it('prints the service-style units of a YAML spec read from stdin', async () => {
    const run = await runCliCaptured(['render', '-f', '-'], yaml);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const [service, socket] = renderUnits(
      {
        name: 'web',
        image: 'registry.example/acme/web:1.4',
        env: { GREETING: 'hello world' },
        ports: ['8080:8080'],
        socket: { listen: ['127.0.0.1:8080'] },
      },
      { style: 'service' },
    );
    expect(run.stdout).toBe(`${service!.contents}\n${socket!.contents}`);
  });

  it('prints Quadlet files as JSON with where each is installed, for the user scope', async () => {
    const run = await runCliCaptured(
      ['render', '-f', '-', '--style', 'quadlet', '--scope', 'user', '--json'],
      yaml,
    );
    expect(run.code).toBe(0);
    const files = JSON.parse(run.stdout) as {
      name: string;
      installDir: string;
      contents: string;
    }[];
    expect(files.map((f) => [f.name, f.installDir])).toEqual([
      ['web.container', '.config/containers/systemd'],
      ['web.socket', '.config/systemd/user'],
    ]);
    expect(files[0]!.contents).toContain('Environment="GREETING=hello world"\n');
  });

  it('writes the files into --out and says where they belong', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podfleet-render-'));
    const run = await runCliCaptured(
      ['render', '-f', '-', '--out', dir],
      JSON.stringify({ name: 'api', image: 'localhost/api:1' }),
    );
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`wrote ${join(dir, 'api.service')} (install in /etc/systemd/system)\n`);
    expect(await readdir(dir)).toEqual(['api.service']);
    expect(await readFile(join(dir, 'api.service'), 'utf8')).toContain(
      '--name api localhost/api:1\n',
    );
  });

  it('renders several specs from a list or from YAML documents', async () => {
    const run = await runCliCaptured(
      ['render', '-f', '-', '--json'],
      `name: a\nimage: localhost/a:1\n---\nname: b\nimage: localhost/b:1\n`,
    );
    expect(JSON.parse(run.stdout).map((f: { name: string }) => f.name)).toEqual([
      'a.service',
      'b.service',
    ]);
  });

  it('exits 2 with one line per problem, each naming the field', async () => {
    const run = await runCliCaptured(
      ['render', '-f', '-'],
      JSON.stringify({
        name: 'Web',
        image: 'registry.example/web:1',
        env: { GREETING: 'a\nb' },
        ports: ['80'],
      }),
    );
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      'podfleet: <stdin>: name: must match [a-z0-9][a-z0-9-]{0,62} (it names the unit)',
      'podfleet: <stdin>: env.GREETING: newline not allowed',
      'podfleet: <stdin>: ports[0]: expected [ip:]host:container[/proto]',
    ]);
  });

  it('names the list entry that is wrong and a service defined twice', async () => {
    const list = [
      { name: 'a', image: 'localhost/a:1' },
      { name: 'a', image: 'localhost/a:1', restart: 'x' },
    ];
    const run = await runCliCaptured(['render', '-f', '-'], JSON.stringify(list));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^podfleet: <stdin>\[1\]: restart: must be no, on-failure/m);
  });

  it.each([
    [
      ['render', '-f', '-', '--style', 'docker'],
      'podfleet: --style: must be service or quadlet, not docker\n',
    ],
    [['render'], "podfleet: required option '-f, --file <path>' not specified\n"],
    [
      ['render', '-f', '/nonexistent/spec.yaml'],
      'podfleet: /nonexistent/spec.yaml: cannot read: ENOENT\n',
    ],
    [['frobnicate'], "podfleet: unknown command 'frobnicate'\n"],
  ])('rejects %j in one line with exit 2', async (argv, message) => {
    const run = await runCliCaptured(argv, 'name: web\nimage: localhost/web:1\n');
    expect(run).toEqual({ code: 2, stdout: '', stderr: message });
  });

  it('reports a YAML syntax error with its line and column', async () => {
    const run = await runCliCaptured(['render', '-f', '-'], 'name: web\nimage: [unclosed\n');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^podfleet: <stdin>:\d+:\d+: /);
    expect(run.stderr.split('\n')).toHaveLength(2);
  });

  it('prints help for the program and for render', async () => {
    const top = await runCliCaptured(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('render [options]');
    const render = await runCliCaptured(['render', '--help']);
    expect(render.code).toBe(0);
    expect(render.stdout).toContain('--style <style>');
  });
});
