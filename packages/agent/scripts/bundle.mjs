#!/usr/bin/env node
// Bundles podfleet-agent into one ESM file that runs on any device with Node ≥ 20 and nothing
// else: no npm, no node_modules. What `podfleet enroll ssh` copies to /opt/podfleet/agent.
//
//   node packages/agent/scripts/bundle.mjs [--force] [--out FILE]
//
// Built from the sources (src/, shared's src/), so it never lags behind a stale dist/; rebuilt
// only when a source, the entry, this script or package-lock.json is newer than the bundle.
// Beside it, the agent's unit for that install (renderAgentUnit with ENTRY), so that enrollment
// installs the unit the agent package renders without depending on the package.
// Prints one JSON line: { path, sha256, bytes, entry, unitPath, built }.
import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { build } from 'esbuild';

const AGENT = fileURLToPath(new URL('..', import.meta.url));
const REPO = join(AGENT, '../..');
const SHARED = join(REPO, 'packages/shared');
const DEFAULT_BUNDLE = join(AGENT, 'dist/podfleet-agent.bundle.mjs');
/** Where enrollment puts the bundle on a device (controller/src/enrollment/ssh/agent-files.ts). */
const ENTRY = '/opt/podfleet/agent/podfleet-agent.mjs';

const { version } = JSON.parse(readFileSync(join(AGENT, 'package.json'), 'utf8'));

/**
 * An esbuild plugin: the bin's import of dist/cli/main.js reads src/cli/main.ts instead, and the
 * agent's version is written in (agent-version.ts reads package.json beside it, which a device
 * does not have).
 */
const fromSources = {
  name: 'agent-sources',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\.\/dist\/cli\/main\.js$/ }, (resolved) => ({
      path: join(dirname(resolved.importer), '../src/cli/main.ts'),
    }));
    pluginBuild.onLoad({ filter: /\/src\/runtime\/agent-version\.ts$/ }, () => ({
      contents: `export const AGENT_VERSION = ${JSON.stringify(version)};`,
      loader: 'ts',
    }));
  },
};

/**
 * An esbuild plugin: zod's `locales` namespace with English only (zod's default, and the only one
 * the agent uses) instead of its 40-odd languages, a quarter of the bundle.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (resolved) =>
      /\/zod\/v4\/(classic|core)$/.test(resolved.resolveDir)
        ? { path: join(resolved.resolveDir, '../locales/index.js'), namespace: 'zod-locales' }
        : undefined,
    );
    pluginBuild.onLoad({ filter: /.*/, namespace: 'zod-locales' }, (loaded) => ({
      contents: `export { default as en } from ${JSON.stringify(join(dirname(loaded.path), 'en.js'))};`,
      loader: 'js',
      resolveDir: dirname(loaded.path),
    }));
  },
};

const args = process.argv.slice(2);
const force = args.includes('--force');
const outIndex = args.indexOf('--out');
const out = outIndex >= 0 ? args[outIndex + 1] : DEFAULT_BUNDLE;
if (!out) {
  process.stderr.write('bundle.mjs: --out needs a file\n');
  process.exit(2);
}

const unitPath = out.replace(/\.mjs$/, '') + '.service';
const inputs = [
  join(AGENT, 'src'),
  join(SHARED, 'src'),
  join(AGENT, 'bin/podfleet-agent.js'),
  fileURLToPath(import.meta.url),
  join(REPO, 'package-lock.json'),
];

if (
  force ||
  !existsSync(out) ||
  !existsSync(unitPath) ||
  newest(inputs) > Math.min(statSync(out).mtimeMs, statSync(unitPath).mtimeMs)
) {
  await build({
    entryPoints: [join(AGENT, 'bin/podfleet-agent.js')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    legalComments: 'none',
    // The source stays in the agent's heap for its lifetime (V8 keeps it for lazy compilation):
    // without comments and whitespace it is half the size, and pure ASCII (one byte a character,
    // where a single "…" in a comment made V8 store all of it with two). Names are kept, so that
    // stack traces and pino's error types still read.
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
    logLevel: 'warning',
    // Sources, not dist/: the bin's `../dist/cli/main.js` and @podfleet/shared resolve to src/.
    alias: { '@podfleet/shared': join(SHARED, 'src/index.ts') },
    plugins: [fromSources, zodEnglishOnly],
    // ws's optional native helpers: ws falls back to JS without them.
    external: ['bufferutil', 'utf-8-validate'],
    // CommonJS dependencies (mqtt's, pino's) call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __pfCreateRequire } from 'node:module'; const require = __pfCreateRequire(import.meta.url);",
    },
  });
  writeFileSync(unitPath, await renderUnit());
  report(true);
} else {
  report(false);
}

function report(built) {
  const bytes = readFileSync(out);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const line = { path: out, sha256, bytes: bytes.length, entry: ENTRY, unitPath, built };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** podfleet-agent.service for ENTRY, rendered by the agent's own renderAgentUnit. */
async function renderUnit() {
  const built = await build({
    entryPoints: [join(AGENT, 'src/install/agent-unit-file.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    write: false,
    logLevel: 'warning',
  });
  const code = Buffer.from(built.outputFiles[0].contents).toString('base64');
  const { renderAgentUnit } = await import(`data:text/javascript;base64,${code}`);
  return renderAgentUnit({ entry: ENTRY });
}

/** The newest modification time among files (directories walked, tests included: harmless). */
function newest(paths) {
  let latest = 0;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      latest = Math.max(latest, newest(readdirSync(path).map((name) => join(path, name))));
    } else latest = Math.max(latest, stat.mtimeMs);
  }
  return latest;
}
