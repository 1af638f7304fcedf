/* global URL */
// How fast the podfleet CLI starts: wall time and max RSS of `podfleet --help` and
// `podfleet devices ls --help`, the median of N runs, with the load average around them and
// Node's own start (`node -e 0`) as the floor.
//
//   node bench/cli-startup.mjs [--runs N] [--compare OTHER/packages/controller/bin/podfleet.js]
//
// --compare times another checkout's built CLI in the same run, interleaved with this one's
// (before/after figures are comparable only from one run: this machine's load moves). Max RSS
// comes from GNU time (/usr/bin/time, Debian package `time`); Node reports no child's rusage.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const TIME = '/usr/bin/time';
const COMMANDS = [['--help'], ['devices', 'ls', '--help']];

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '15' }, compare: { type: 'string' } },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: a whole number from 1');
if (!existsSync(TIME)) throw new Error(`${TIME} (GNU time) is needed for the max RSS`);

const binaries = [
  {
    label: 'this checkout',
    path: fileURLToPath(new URL('../packages/controller/bin/podfleet.js', import.meta.url)),
  },
  ...(values.compare ? [{ label: values.compare, path: values.compare }] : []),
];
for (const { path } of binaries) {
  if (!existsSync(path)) throw new Error(`${path}: not found (npm run build first)`);
}

/** One start: wall milliseconds (measured here) and max RSS in MB (from GNU time). */
function once(bin, argv) {
  const args = bin ? [bin, ...argv] : ['-e', '0'];
  const started = process.hrtime.bigint();
  const run = spawnSync(TIME, ['-f', 'maxrss-kb %M', process.execPath, ...args], {
    encoding: 'utf8',
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const rss = /maxrss-kb (\d+)/.exec(run.stderr);
  if (run.status !== 0 || !rss) throw new Error(`${bin} ${argv.join(' ')}: ${run.stderr.trim()}`);
  return { wallMs, rssMb: Number(rss[1]) / 1024 };
}

const median = (numbers) => {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

const samples = new Map();
const loadBefore = load();
const floor = [];
// Interleaved, so that a burst of load from elsewhere falls on every binary alike.
for (let i = 0; i < runs; i++) {
  floor.push(once(undefined, []));
  for (const { path } of binaries) {
    for (const argv of COMMANDS) {
      const key = `${path}\0${argv.join(' ')}`;
      if (!samples.has(key)) samples.set(key, []);
      samples.get(key).push(once(path, argv));
    }
  }
}

console.log(`podfleet CLI start-up, median of ${runs} runs, ${new Date().toISOString()}`);
console.log(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after`);
console.log(
  `node -e 0 (the floor): ${median(floor.map((run) => run.wallMs)).toFixed(0)} ms, max RSS ${median(floor.map((run) => run.rssMb)).toFixed(1)} MB`,
);
for (const { label, path } of binaries) {
  for (const argv of COMMANDS) {
    const runsOf = samples.get(`${path}\0${argv.join(' ')}`);
    const wall = median(runsOf.map((run) => run.wallMs));
    const rss = median(runsOf.map((run) => run.rssMb));
    const fastest = Math.min(...runsOf.map((run) => run.wallMs));
    console.log(
      `${label}: podfleet ${argv.join(' ')}: ${wall.toFixed(0)} ms (fastest ${fastest.toFixed(0)} ms), max RSS ${rss.toFixed(1)} MB`,
    );
  }
}
