import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCliCaptured } from './testing.js';

// Nothing listens on port 1: a command that sent a request would say it cannot reach it, so a
// flag refusal proves the flags were checked before any request.
const offline = ['--url', 'http://127.0.0.1:1', '--token', 'pft_unused'];
const start = (...flags: string[]) =>
  runCliCaptured([
    'rollout',
    'start',
    'web',
    'registry.example/web:2',
    '--group',
    'berlin',
    ...flags,
    ...offline,
  ]);

// prettier-ignore
const REFUSED: [flags: string[], line: string][] = [
  [['--batch-size', '0'], '--batch-size: must be at least 1 (or above 0%)'],
  [['--batch-size', '0%'], '--batch-size: must be above 0% (or at least 1)'],
  [['--batch-size', '100.5%'], '--batch-size: must be at most 100%'],
  [['--batch-size', '2.5'], '--batch-size: must be a count or a percentage like "20%"'],
  [['--max-failures', '101%'], '--max-failures: must be at most 100%'],
  [['--canary', 'all'], '--canary: Invalid input: expected number, received string'],
  [['--health-timeout', '1000000000000'], '--health-timeout: must be at most 168h (7 days)'],
  [['--health-timeout', '169h'], '--health-timeout: must be at most 168h (7 days)'],
  [['--pause-between', '168h1s'], '--pause-between: must be at most 168h (7 days)'],
  [['--group', ''], '--group[1]: Too small: expected string to have >=1 characters'],
];

describe('rollout flags, checked before any request', () => {
  it.each(REFUSED)('refuses %j in one line naming the flag', async (flags, line) => {
    for (const command of ['start', 'plan']) {
      const run = await runCliCaptured([
        'rollout', command, 'web', 'registry.example/web:2', '--group', 'berlin', ...flags, ...offline,
      ]); // prettier-ignore
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`podfleet: ${line}\n`);
    }
  });

  it('lets the last accepted values through to the request (which then cannot connect)', async () => {
    const run = await start('--batch-size', '100%', '--max-failures', '100%', '--health-timeout', '168h', '--canary', '0'); // prettier-ignore
    expect(run.stderr).toMatch(/^podfleet: cannot reach the controller at http:\/\/127\.0\.0\.1:1/);
  });

  describe('a rollout spec file', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'podfleet-rollout-'));
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('names the file and the field it got wrong, before any request', async () => {
      const file = join(dir, 'rollout.yaml');
      await writeFile(
        file,
        [
          'service: web',
          'image: registry.example/web:2',
          'targets: { groups: [berlin] }',
          'strategy:',
          '  batchSize: 0',
          '  healthTimeout: 1e12',
          '  policy: { bake: 169h, successThreshold: "100.5%" }',
        ].join('\n'),
      );
      const run = await runCliCaptured(['rollout', 'start', '-f', file, ...offline]);
      expect(run.code).toBe(2);
      expect(run.stderr.trim().split('\n')).toEqual([
        `podfleet: ${file}: strategy.batchSize: must be at least 1 (or above 0%)`,
        `podfleet: ${file}: strategy.healthTimeout: must be at most 168h (7 days)`,
        `podfleet: ${file}: strategy.policy.successThreshold: must be at most 100%`,
        `podfleet: ${file}: strategy.policy.bake: must be at most 168h (7 days)`,
      ]);
    });

    it('names the flag when a flag overrides the file', async () => {
      const file = join(dir, 'good.yaml');
      await writeFile(
        file,
        'service: web\nimage: registry.example/web:2\ntargets: { groups: [berlin] }\n',
      );
      const run = await runCliCaptured([
        'rollout',
        'plan',
        '-f',
        file,
        '--batch-size',
        '0%',
        ...offline,
      ]);
      expect(run.stderr).toBe('podfleet: --batch-size: must be above 0% (or at least 1)\n');
    });
  });
});
