import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_VERSION } from '../runtime/agent-version.js';
import { runCli } from './main.js';

async function run(argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (chunk: string | Uint8Array) => ((stdout += String(chunk)), true) },
    stderr: { write: (chunk: string | Uint8Array) => ((stderr += String(chunk)), true) },
  });
  return { code, stdout, stderr };
}

describe('podfleet-agent', () => {
  it('prints help for itself and every command, exit 0', async () => {
    for (const argv of [['--help'], ['run', '--help'], ['sim', '--help'], ['help', 'sim']]) {
      const { code, stdout, stderr } = await run(argv);
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^Usage: podfleet-agent/);
    }
    expect((await run(['sim', '--help'])).stdout).toContain('--offline-rate <share>');
    expect((await run(['run', '--help'])).stdout).toContain(
      '--config <file>  agent config (YAML) (default: "/etc/podfleet/agent.yaml")',
    );
  });

  it('prints its package version for --version and -V, exit 0', async () => {
    const manifest = JSON.parse(
      await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version: string };
    expect(AGENT_VERSION).toBe(manifest.version);
    for (const flag of ['--version', '-V']) {
      expect(await run([flag])).toEqual({ code: 0, stdout: `${manifest.version}\n`, stderr: '' });
    }
  });

  it('exits 2 with one line on bad input', async () => {
    const cases: Array<[string[], string]> = [
      [['sim'], "required option '-n, --devices <count>' not specified"],
      [['sim', '-n', '0'], 'must be a whole number from 1 to 100000'],
      [['sim', '-n', '2', '--offline-rate', '1.5'], 'must be a share from 0 to 1'],
      [['sim', '-n', '2', '--broker', 'http://x'], 'must be mqtt://, mqtts://, ws:// or wss://'],
      [['sim', '-n', '2', '--prefix', 'a/b'], 'must be letters, digits, dot, dash or underscore'],
      [['sim', '-n', '2', '--key', '/nonexistent.pem'], '--key: cannot read /nonexistent.pem'],
      [['launch'], "unknown command 'launch'"],
    ];
    for (const [argv, message] of cases) {
      const { code, stderr } = await run(argv);
      expect(code, argv.join(' ')).toBe(2);
      expect(stderr).toContain(message);
      expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    }
  });

  it('run: a bad config is one line naming the file and the field, exit 2', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podfleet-cli-'));
    try {
      const path = join(dir, 'agent.yaml');
      await writeFile(
        path,
        'device: dev-1\nbroker: { url: "tcp://b" }\ncontroller: { publicKeys: x }\n',
      );
      const { code, stderr } = await run(['run', '--config', path]);
      expect(code).toBe(2);
      expect(stderr).toBe(
        `podfleet-agent: ${path}: broker.url: must be mqtt://, mqtts://, ws:// or wss://HOST[:PORT], not "tcp://b"; controller.publicKeys: not an Ed25519 public key in PEM form\n`,
      );
      expect((await run(['run', '--config', join(dir, 'missing.yaml')])).stderr).toBe(
        `podfleet-agent: ${join(dir, 'missing.yaml')}: cannot read (ENOENT)\n`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
