import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/podfleet.js', import.meta.url));
const manifest = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

// The installed entry point (built dist/), as an operator runs it.
describe('the podfleet executable', () => {
  it('renders a spec from stdin and exits 0', () => {
    const run = spawnSync(process.execPath, [bin, 'render', '-f', '-', '--style', 'quadlet'], {
      input: 'name: web\nimage: localhost/web:1\n',
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('[Container]\nImage=localhost/web:1\nContainerName=web\n');
  });

  it('exits 2 with a one-line reason and no stack trace on a bad spec', () => {
    const run = spawnSync(process.execPath, [bin, 'render', '-f', '-'], {
      input: 'name: web\n',
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      'podfleet: <stdin>: image: Invalid input: expected string, received undefined\n',
    );
  });
});

describe('podfleet --version', () => {
  it('prints the package version, exit 0', () => {
    for (const flag of ['--version', '-V']) {
      const run = spawnSync(process.execPath, [bin, flag], { encoding: 'utf8' });
      expect({ status: run.status, stdout: run.stdout, stderr: run.stderr }).toEqual({
        status: 0,
        stdout: `${manifest.version}\n`,
        stderr: '',
      });
    }
  });
});

// What a command loads, as a module-resolution hook in the child sees it: every URL resolved.
const hooks = mkdtempSync(join(tmpdir(), 'pf-cli-startup-'));
afterAll(() => rmSync(hooks, { recursive: true, force: true }));
writeFileSync(
  join(hooks, 'hooks.mjs'),
  `export async function resolve(specifier, context, next) {
     const resolved = await next(specifier, context);
     process.stderr.write('loaded ' + resolved.url + '\\n');
     return resolved;
   }`,
);
writeFileSync(
  join(hooks, 'register.mjs'),
  `import { register } from 'node:module';
   register(${JSON.stringify(pathToFileURL(join(hooks, 'hooks.mjs')).href)});`,
);

/** The npm packages a command line loads (node_modules/<name>/…), sorted. */
function packagesLoaded(argv: string[], input = ''): string[] {
  const run = spawnSync(process.execPath, ['--import', join(hooks, 'register.mjs'), bin, ...argv], {
    encoding: 'utf8',
    input,
    // Nothing listens on port 9 (discard): an API command and migrate are refused at once.
    env: {
      ...process.env,
      PODFLEET_URL: 'http://127.0.0.1:9',
      PODFLEET_TOKEN: 'pf_none',
      DATABASE_URL: 'postgres://podfleet@127.0.0.1:9/none',
    },
  });
  const urls = [...run.stderr.matchAll(/^loaded (\S+)$/gm)].map((match) => match[1]!);
  expect(urls).toContain(pathToFileURL(bin).href);
  const names = urls.flatMap((url) => {
    const name = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];
    return name ? [name] : [];
  });
  return [...new Set(names)].sort();
}

// `podfleet --help` took 1.3–1.8 s and 100 MB when every command imported the server; now a
// command loads the server, zod, yaml or ssh2 only when it runs (bench/cli-startup.mjs times it).
describe('what the podfleet CLI loads before a command runs', () => {
  const light = ['@bomb.sh/tab', 'commander'];
  it.each([
    [['--help']],
    [['devices', 'ls', '--help']],
    [['serve', '--help']],
    [['migrate', '--help']],
    [['rollout', 'start', '--help']],
    [['enroll', 'ssh', '--help']],
    [['keys', 'show', '--help']],
    [['devices', 'ls']],
    [['completion', 'bash']],
  ])('podfleet %j: commander and the completion library only', (argv) => {
    expect(packagesLoaded(argv)).toEqual(light);
  });

  it('migrate and render load what they need when they run', () => {
    expect(packagesLoaded(['migrate'])).toEqual(
      expect.arrayContaining(['@prisma/adapter-pg', '@prisma/client']),
    );
    expect(packagesLoaded(['render', '-f', '-'], 'name: web\nimage: web:1\n')).toEqual(
      expect.arrayContaining(['yaml', 'zod']),
    );
  });
});
