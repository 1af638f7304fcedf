import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../cli/main.js';
import { Cleanups, mustRun, waitFor, within } from './e2e/harness.js';
import { fleetOn, startRollout } from './e2e/sim-fleet.js';

const V1 = 'registry.example/acme/web:1.0';
const V2 = 'registry.example/acme/web:2.0';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('`rollout watch` without a terminal', () => {
  it('prints a line per change, the approval it waits for while it waits', async () => {
    const { e } = await fleetOn(cleanups, { name: 'watch', n: 3, image: V1 });
    const { id } = await startRollout(e, V2, '--canary', '1', '--batch-size', '100%', '--approve-after-canary', '--health-timeout', '30s'); // prettier-ignore

    // Its standard output a pipe, read as it is written.
    const lines: string[] = [];
    let stderr = '';
    const watching = runCli(
      ['rollout', 'watch', id, '--url', e.controller.url, '--token', e.token],
      {
        stdout: { write: (text: string) => lines.push(...String(text).trimEnd().split('\n')) },
        stderr: { write: (text: string) => (stderr += String(text)) },
        stdin: Readable.from([]),
      },
    );

    const hold = await waitFor(
      'the watch to print the approval it waits for',
      60_000,
      async () => lines.find((line) => line.includes(`podfleet rollout approve ${id}`)),
      () => lines.join(' | '),
    );
    expect(hold).toMatch(/^running \(.+\): 1\/3 succeeded, 0 failed, 2 pending .*; waiting: /);
    await mustRun(e.cli('rollout', 'approve', id), 'rollout approve');

    expect(await within('`rollout watch` to end', 60_000, watching), stderr).toBe(0);
    const summaries = lines.filter((line) => /^\w+( \(.+\))?: \d+\/3 succeeded/.test(line));
    // Each summary differs from the one before it: one line per change, none repeated.
    expect(summaries.every((line, i) => i === 0 || line !== summaries[i - 1])).toBe(true);
    expect(summaries.indexOf(hold)).toBeGreaterThan(0);
    expect(summaries.slice(summaries.indexOf(hold) + 1)).toContainEqual(
      expect.stringMatching(/^running \(batch 1\): /),
    );
    expect(summaries.at(-1)).toMatch(/^succeeded: 3\/3 succeeded/);
  }, 180_000);
});
