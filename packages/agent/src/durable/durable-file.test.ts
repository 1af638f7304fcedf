import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeFileDurably, writeFileDurably } from './durable-file.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'podfleet-durable-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('writeFileDurably', () => {
  it('writes a secret 0600 file into the 0700 directories it makes, leaving no temporary file', async () => {
    const path = join(directory, 'a', 'b', 'state.json');
    await writeFileDurably(path, '{"keys":[]}\n');
    expect(await readFile(path, 'utf8')).toBe('{"keys":[]}\n');
    expect(await modeOf(path)).toBe(0o600);
    expect(await modeOf(join(directory, 'a'))).toBe(0o700);
    expect(await modeOf(join(directory, 'a', 'b'))).toBe(0o700);
    expect(await readdir(join(directory, 'a', 'b'))).toEqual(['state.json']);
  });

  it('replaces an existing file whole, with the mode asked for', async () => {
    const path = join(directory, 'web.service');
    await writeFile(path, 'old contents that are longer than the new ones\n', { mode: 0o600 });
    await writeFileDurably(path, 'new\n', { mode: 0o644 });
    expect(await readFile(path, 'utf8')).toBe('new\n');
    expect(await modeOf(path)).toBe(0o644);
    expect(await readdir(directory)).toEqual(['web.service']);
  });

  it('keeps two writes to one file at once apart and ends with one of them whole', async () => {
    const path = join(directory, 'applied.json');
    await Promise.all(['one\n', 'two\n'].map((text) => writeFileDurably(path, text)));
    expect(['one\n', 'two\n']).toContain(await readFile(path, 'utf8'));
    expect(await readdir(directory)).toEqual(['applied.json']);
  });

  it('leaves the old file and no temporary file when the rename fails', async () => {
    const path = join(directory, 'backup');
    await mkdir(path);
    await writeFile(join(path, 'web.json'), 'old');
    // A file cannot be renamed over a non-empty directory (EISDIR or ENOTEMPTY).
    await expect(writeFileDurably(path, 'new')).rejects.toThrow(/EISDIR|ENOTEMPTY/);
    expect(await readFile(join(path, 'web.json'), 'utf8')).toBe('old');
    expect(await readdir(directory)).toEqual(['backup']);
  });
});

describe('removeFileDurably', () => {
  it('removes the file, and is content when the file or its directory is gone', async () => {
    const path = join(directory, 'backup', 'web.json');
    await writeFileDurably(path, '{}');
    await removeFileDurably(path);
    expect(await readdir(join(directory, 'backup'))).toEqual([]);
    await removeFileDurably(path);
    await removeFileDurably(join(directory, 'gone', 'web.json'));
  });
});
