import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/podfleet.js', import.meta.url));

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
