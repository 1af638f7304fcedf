import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { pino } from 'pino';
import { SimFleet, type FleetProgress } from '../sim/sim-fleet.js';
import { untilAborted, type CliIo } from './io.js';
import {
  newSimKey,
  parseBrokerUrl,
  parseCount,
  parseLabels,
  parsePrefix,
  parseRate,
  parseSeconds,
  readCredentials,
  readPublicKeys,
} from './sim-options.js';

interface SimOptions {
  devices: number;
  broker: string;
  labels?: Record<string, string>;
  failRate: number;
  badImage?: string;
  offlineRate: number;
  prefix: string;
  key?: string;
  credentials?: string;
  settle?: number;
  duration?: number;
  progress: number;
  logLevel: string;
  json?: boolean;
}

export function registerSim(program: Command, io: CliIo, signal: AbortSignal): void {
  program
    .command('sim')
    .description('run N simulated devices: the real agent on an in-memory systemd + Podman')
    .requiredOption('-n, --devices <count>', 'how many devices', parseCount)
    .option('--broker <url>', 'MQTT broker', parseBrokerUrl, 'mqtt://127.0.0.1:1883')
    .option('--labels <k=v,...>', 'labels of every device', parseLabels)
    .option(
      '--fail-rate <share>',
      'share of devices whose new images never get ready',
      parseRate,
      0,
    )
    .option(
      '--bad-image <text>',
      'images whose reference contains this never get ready on any device',
    )
    .option('--offline-rate <share>', 'share of devices that go off and on', parseRate, 0)
    .option('--prefix <name>', 'device ids are NAME-0000, NAME-0001, …', parsePrefix, 'sim')
    .option('--key <pem-file>', 'controller public key(s); without it a key is made and shown')
    .option(
      '--credentials <json-file>',
      'broker passwords by device id ({"sim-0000": "…"}), for a broker with per-device accounts',
    )
    .option('--settle <seconds>', "override every service's ready.settle", parseSeconds)
    .option('--duration <seconds>', 'stop after this long (default: on Ctrl-C)', parseSeconds)
    .option('--progress <seconds>', 'how often to print progress', parseSeconds, 2)
    .option('--log-level <level>', 'agent log level (to stderr)', 'error')
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      '\nImages whose reference contains crash-after-Ns (e.g. web:1.1-crash-after-30s) get ready,\n' +
        'then exit N seconds later, once: systemd restarts them, and the device reports the\n' +
        'restart (restarts + 1, a new activeSince), as an app that crashes after its start.',
    )
    .action((options: SimOptions) => runSim(options, io, signal));
}

async function runSim(options: SimOptions, io: CliIo, signal: AbortSignal): Promise<void> {
  const passwords = options.credentials ? await readCredentials(options.credentials) : undefined;
  const trustedKeys = options.key ? await readPublicKeys(options.key) : [await makeKey(io)];
  const logger = pino({ level: options.logLevel }, pino.destination(2));
  const fleet = new SimFleet({
    devices: options.devices,
    broker: options.broker,
    ...(passwords ? { passwords } : {}),
    prefix: options.prefix,
    labels: options.labels ?? {},
    failRate: options.failRate,
    ...(options.badImage ? { badImage: options.badImage } : {}),
    offlineRate: options.offlineRate,
    trustedKeys,
    ...(options.settle !== undefined ? { settle: options.settle } : {}),
    logger,
  });
  const labels = Object.entries(options.labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const first = fleet.devices[0]!.id;
  const last = fleet.devices.at(-1)!.id;
  io.stderr.write(
    `sim: ${options.devices} devices ${first}…${last}${labels ? ` labels ${labels}` : ''}, broker ${options.broker}\n`,
  );
  const started = Date.now();
  await fleet.start();
  const show = () => io.stderr.write(`sim: ${describe(fleet.progress())}\n`);
  const ticker = setInterval(show, options.progress * 1000);
  // Not AbortSignal.any with AbortSignal.timeout: the timeout signal may be collected unfired.
  const stop = new AbortController();
  const abort = () => stop.abort();
  signal.addEventListener('abort', abort, { once: true });
  if (signal.aborted) abort();
  const limit =
    options.duration !== undefined ? setTimeout(abort, options.duration * 1000) : undefined;
  await untilAborted(stop.signal);
  clearTimeout(limit);
  signal.removeEventListener('abort', abort);
  clearInterval(ticker);
  show();
  const summary = {
    ...fleet.progress(),
    seconds: Math.round((Date.now() - started) / 100) / 10,
    rssMiB: Math.round(process.memoryUsage().rss / 1048576),
  };
  await fleet.stop();
  io.stdout.write(
    options.json
      ? `${JSON.stringify(summary)}\n`
      : `sim summary: ${describe(summary)}; ran ${summary.seconds}s, all connected after ${summary.connectSeconds ?? '-'}s, rss ${summary.rssMiB} MiB\n`,
  );
}

function describe(p: FleetProgress): string {
  return (
    `connected ${p.connected}/${p.devices}` +
    (p.flapping ? ` (${p.flapping} flapping)` : '') +
    ` · generation ${p.generation}: ${p.applied} applied, ${p.failed} failed` +
    ` · ${p.rollbacks} rollbacks, ${p.rejected} rejected · outbox ${p.outboxWaiting}`
  );
}

async function makeKey(io: CliIo): Promise<string> {
  const key = newSimKey();
  const directory = await mkdtemp(join(tmpdir(), 'podfleet-sim-'));
  const path = join(directory, 'controller.key');
  await writeFile(path, key.privateKeyPem, { mode: 0o600 });
  await writeFile(join(directory, 'controller.pub'), key.publicKeyPem);
  io.stderr.write(`sim: no --key: sign manifests with ${path}\n`);
  return key.publicKeyPem;
}
