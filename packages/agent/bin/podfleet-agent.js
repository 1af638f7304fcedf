#!/usr/bin/env node
import { runCli } from '../dist/cli/main.js';

// SIGINT / SIGTERM (systemctl stop) end `run` and `sim` cleanly; a second one exits at once.
const stop = new AbortController();
for (const name of ['SIGINT', 'SIGTERM']) {
  process.once(name, () => {
    stop.abort();
    process.once(name, () => process.exit(130));
  });
}

process.exitCode = await runCli(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr },
  stop.signal,
);
