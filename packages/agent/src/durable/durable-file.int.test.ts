// The durable write and remove traced by strace in a child node process: the order of the
// syscalls that make them survive a power cut, and a process killed at each step of a write.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { transform } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const TRACED = 'fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat';
const TEMPORARY = /^\.state\.json\.[0-9a-f]{12}\.tmp$/;

let work: string;
let directory: string;
let target: string;
let child: string;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'podfleet-durable-'));
  directory = join(work, 'state');
  target = join(directory, 'state.json');
  // The module as node runs it: TypeScript stripped, nothing else changed.
  const source = await readFile(new URL('./durable-file.ts', import.meta.url), 'utf8');
  const { code } = await transform(source, { loader: 'ts', format: 'esm' });
  await writeFile(join(work, 'durable-file.mjs'), code);
  child = join(work, 'child.mjs');
  await writeFile(
    child,
    [
      "import { removeFileDurably, writeFileDurably } from './durable-file.mjs';",
      'const [op, path, data] = process.argv.slice(2);',
      "await (op === 'write' ? writeFileDurably(path, data) : removeFileDurably(path));",
    ].join('\n'),
  );
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Kill {
  /** strace's syscall set, `:when=N` counted per thread. */
  inject: string;
  /** Only the calls on this path (under `work`). */
  only?: string;
}

/** Runs the child under strace; returns how it ended and the traced calls on `work`, in order. */
async function traced(args: string[], kill?: Kill) {
  const trace = join(work, 'trace');
  const killArgs =
    kill === undefined
      ? []
      : [
          ...(kill.only === undefined ? [] : ['-P', join(work, kill.only)]),
          ...['-e', `inject=${kill.inject}:error=EIO:signal=KILL`],
        ];
  const result = spawnSync(
    'strace',
    ['-f', '-qq', '-y', '-e', `trace=${TRACED}`, ...killArgs, '-o', trace, 'node', child, ...args],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (result.error) throw result.error;
  const calls = (await readFile(trace, 'utf8'))
    .split('\n')
    .filter((line) => line.includes(work))
    .map((line) => line.replace(/^\d+\s+/, '').replaceAll(work, 'W'))
    .map((line) => line.replace(/\.state\.json\.[0-9a-f]{12}\.tmp/g, '.state.json.TMP'))
    .map((line) => line.replace(/\((\w+)\(\d+</, '($1<').replace(/^(\w+)\(\d+</, '$1(<'));
  return { status: result.status, signal: result.signal, stderr: result.stderr, calls };
}

async function writeOld(): Promise<void> {
  const result = await traced(['write', target, 'old\n']);
  expect(result.status, result.stderr).toBe(0);
}

describe('writeFileDurably under strace', () => {
  it('fsyncs the temporary file, renames it over the target, then fsyncs the directory', async () => {
    await writeOld();
    const result = await traced(['write', target, 'new\n']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls).toEqual([
      'fsync(<W/state/.state.json.TMP>) = 0',
      expect.stringMatching(
        /^rename(at2?)?\(.*"W\/state\/\.state\.json\.TMP", .*"W\/state\/state\.json".*\) = 0$/,
      ),
      'fsync(<W/state>) = 0',
    ]);
    expect(await readFile(target, 'utf8')).toBe('new\n');
  });

  it('fsyncs the parent of each directory it has to make', async () => {
    const result = await traced(['write', target, 'new\n']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls[0]).toBe('fsync(<W>) = 0');
    expect(result.calls.at(-1)).toBe('fsync(<W/state>) = 0');
  });

  it('removes durably: unlink, then fsync the directory', async () => {
    await writeOld();
    const result = await traced(['remove', target]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.calls).toEqual([
      expect.stringMatching(/^unlink(at)?\(.*"W\/state\/state\.json".*\) = 0$/),
      'fsync(<W/state>) = 0',
    ]);
  });

  // Killed at the step named; the syscall itself never runs (strace fails it, then kills).
  it.each([
    // The first fsync of the process is the temporary file's, whichever thread makes it.
    { step: 'the fsync of the temporary file', kill: { inject: 'fsync:when=1' }, left: 'old\n' },
    { step: 'the rename', kill: { inject: 'rename,renameat,renameat2' }, left: 'old\n' },
    { step: 'the fsync of the directory', kill: { inject: 'fsync', only: 'state' }, left: 'new\n' },
  ])('a process killed at $step leaves a whole file: $left', async ({ kill, left }) => {
    await writeOld();
    const result = await traced(['write', target, 'new\n'], kill);
    expect(result.signal).toBe('SIGKILL');
    expect(await readFile(target, 'utf8')).toBe(left);
    const names = await readdir(directory);
    expect(names).toContain('state.json');
    // What the kill left behind is a hidden temporary file nothing reads.
    expect(names.filter((name) => name !== 'state.json').every((n) => TEMPORARY.test(n))).toBe(
      true,
    );
  });
});
