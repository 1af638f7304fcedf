import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { RolloutSpecInput } from '@podfleet/shared';
import type { RolloutDeviceStatus, RolloutStatus } from '../rollouts/status.js';
import { emptyPlanProblem } from '../rollouts/empty-plan.js';
import {
  ApiClient,
  ApiError,
  naming as namingQuery,
  resolveConnection,
  withConnection,
  type ConnectionFlags,
} from './api-client.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { parseInteger } from './numbers.js';
import { resolveRolloutId } from './rollout-id.js';
import { renderRollout } from './rollout-view.js';
import { watch } from './rollout-watch.js';
import { formatTable } from './table.js';
import { visible } from './terminal-text.js';

interface SpecFlags extends ConnectionFlags {
  file?: string;
  group?: string[];
  selector?: string;
  canary?: string;
  batchSize?: string;
  maxFailures?: string;
  healthTimeout?: string;
  pauseBetween?: string;
  autoRollback?: boolean;
  offline?: string;
  approveAfterCanary?: boolean;
  overridePin?: string[];
  json?: boolean;
  watch?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
/** Spec fields and the flag (or argument) that sets each, with the option that holds it. */
const FLAG_OF: Record<string, [flag: string, given: (flags: SpecFlags, args: Args) => boolean]> = {
  'targets.groups': ['--group', (f) => f.group !== undefined],
  'targets.selector': ['--selector', (f) => f.selector !== undefined],
  targets: ['--group/--selector', (f) => f.group !== undefined || f.selector !== undefined],
  'strategy.canary': ['--canary', (f) => f.canary !== undefined],
  'strategy.batchSize': ['--batch-size', (f) => f.batchSize !== undefined],
  'strategy.maxFailures': ['--max-failures', (f) => f.maxFailures !== undefined],
  'strategy.healthTimeout': ['--health-timeout', (f) => f.healthTimeout !== undefined],
  'strategy.pauseBetweenBatches': ['--pause-between', (f) => f.pauseBetween !== undefined],
  'strategy.offlineDevices': ['--offline', (f) => f.offline !== undefined],
  image: ['IMAGE', (_, a) => a.image !== undefined],
  service: ['SERVICE', (_, a) => a.service !== undefined],
};
type Args = { service?: string | undefined; image?: string | undefined };

/**
 * A problem line (`strategy.batchSize: …`) named as the user gave the value: the flag or argument
 * when one set it, else the spec file it came from.
 */
function naming(line: string, flags: SpecFlags, args: Args): string {
  // `targets.groups[0]: …` is the --group that was empty, as `targets.groups: …` is.
  const field = Object.keys(FLAG_OF).find(
    (key) => line.startsWith(`${key}:`) || line.startsWith(`${key}[`),
  );
  if (field && FLAG_OF[field]![1](flags, args))
    return `${FLAG_OF[field]![0]}${line.slice(field.length)}`;
  return flags.file ? `${flags.file}: ${line}` : line;
}

/** Renames the spec fields of a 400 from the controller (`strategy.canary: …` → `--canary: …`). */
function namingRefusal(flags: SpecFlags, args: Args) {
  return (error: unknown): never => {
    if (!(error instanceof ApiError) || error.status !== 400) throw error;
    const rename = (line: string) => naming(line, flags, args);
    throw new ApiError(error.status, rename(error.reason), error.issues.map(rename));
  };
}

const ROLLOUT_ID = 'a rollout id, its first 4+ hex digits, or latest';
const LATEST_OF = 'with latest: the newest rollout of this service';

function specOptions(command: Command): Command {
  return withConnection(command)
    .option('-f, --file <path>', 'a rollout spec, YAML or JSON (flags below override it)')
    .option('--group <name>', 'target group (repeat for several)', collect)
    .option('--selector <selector>', 'target devices by labels, e.g. "site=berlin,tier in (edge)"')
    .option('--canary <n>', 'devices updated first, on their own')
    .option('--batch-size <n|p%>', 'devices per batch after the canary (default 10%)')
    .option(
      '--max-failures <n|p%>',
      'failures per batch and overall before pausing or rolling back (default 0)',
    )
    .option(
      '--health-timeout <duration>',
      'how long a device may take to run the new image, ready (default 5m)',
    )
    .option('--pause-between <duration>', 'wait between batches')
    .option('--no-auto-rollback', 'pause on failures instead of rolling back')
    .option('--offline <policy>', 'wait (count offline devices as pending) or skip them')
    .option('--approve-after-canary', 'wait for `rollout approve` after the canary')
    .option(
      '--override-pin <group>',
      'also change devices this group pins (needs an image by digest)',
      collect,
    )
    .option('--json', 'machine-readable output');
}

/** The rollout spec from -f and flags, validated; problems name the flag they came from. */
async function specFrom(
  service: string | undefined,
  image: string | undefined,
  flags: SpecFlags,
): Promise<RolloutSpecInput> {
  // yaml and zod load here, not with the CLI: --help and most commands need neither.
  const [{ parse: parseYaml }, { RolloutSpec, formatIssues }] = await Promise.all([
    import('yaml'),
    import('@podfleet/shared'),
  ]);
  let base: Record<string, unknown> = {};
  if (flags.file) {
    const text = await readFile(flags.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new CliError([`${flags.file}: cannot read: ${error.code ?? error.message}`]);
    });
    try {
      base = (parseYaml(text) ?? {}) as Record<string, unknown>;
    } catch (error) {
      throw new CliError([`${flags.file}: ${(error as Error).message.split('\n')[0]}`]);
    }
  }
  const strategy = { ...((base.strategy as object | undefined) ?? {}) } as Record<string, unknown>;
  const number = (text: string) => (/^\d+$/.test(text) ? Number(text) : text);
  if (flags.canary !== undefined) strategy.canary = number(flags.canary);
  if (flags.batchSize !== undefined) strategy.batchSize = number(flags.batchSize);
  if (flags.maxFailures !== undefined) strategy.maxFailures = number(flags.maxFailures);
  if (flags.healthTimeout !== undefined) strategy.healthTimeout = flags.healthTimeout;
  if (flags.pauseBetween !== undefined) strategy.pauseBetweenBatches = flags.pauseBetween;
  if (flags.autoRollback === false) strategy.autoRollback = false;
  if (flags.offline !== undefined) strategy.offlineDevices = flags.offline;
  if (flags.approveAfterCanary) strategy.approveAfterCanary = true;
  const targets = { ...((base.targets as object | undefined) ?? {}) } as Record<string, unknown>;
  if (flags.group) targets.groups = flags.group;
  if (flags.selector !== undefined) targets.selector = flags.selector;
  const spec: Record<string, unknown> = { ...base, targets, strategy };
  if (service !== undefined) spec.service = service;
  if (image !== undefined) spec.image = image;
  if (flags.overridePin) spec.overridePins = flags.overridePin;
  const result = RolloutSpec.safeParse(spec);
  if (!result.success) {
    const args = { service, image };
    throw new CliError(formatIssues(result.error).map((line) => naming(line, flags, args)));
  }
  return spec as RolloutSpecInput;
}

interface StatusFlags extends ConnectionFlags {
  json?: boolean;
  devices?: boolean;
  state?: string;
  batch?: string;
  service?: string;
}

/** Filters of the device listing, refused without it rather than ignored. */
function checkStatusFilters(flags: StatusFlags): void {
  const given = (['state', 'batch'] as const).filter((flag) => flags[flag] !== undefined);
  if (given.length > 0 && !flags.devices)
    throw new CliError(given.map((flag) => `--${flag}: filters the device listing: add --devices`));
  if (flags.batch !== undefined) parseInteger('--batch', flags.batch, 0);
}

interface PlanView {
  service: string;
  targetImage: string;
  total: number;
  batches: {
    index: number;
    kind: string;
    devices: { id: string; from: string; to: string }[];
    forecast: string[];
  }[];
  excluded: { id: string; reason: string }[];
}

export function registerRollout(program: Command, io: CliIo): void {
  const rollout = program
    .command('rollout')
    .description('change a service’s image on many devices, in batches');
  const client = async (flags: ConnectionFlags) => new ApiClient(await resolveConnection(flags));

  specOptions(rollout.command('plan').argument('[service]').argument('[image]'))
    .description(
      'show the batches, the devices and each device’s image before → after; changes nothing',
    )
    .action(async (service: string | undefined, image: string | undefined, flags: SpecFlags) => {
      const spec = await specFrom(service, image, flags);
      const plan = await (
        await client(flags)
      )
        .request<PlanView>('POST', '/v1/rollouts/plan', { spec })
        .catch(namingRefusal(flags, { service, image }));
      if (flags.json) return void io.stdout.write(`${JSON.stringify(plan)}\n`);
      io.stdout.write(
        `${plan.service} → ${plan.targetImage}: ${plan.total} devices in ${plan.batches.length} batches\n`,
      );
      const rows = plan.batches.flatMap((batch) =>
        batch.devices.map((d) => [
          batch.kind === 'canary' ? 'canary' : String(batch.index),
          d.id,
          `${d.from} → ${d.to}`,
        ]),
      );
      if (rows.length > 0) io.stdout.write(formatTable(['BATCH', 'DEVICE', 'IMAGE'], rows));
      for (const batch of plan.batches) {
        const name = batch.kind === 'canary' ? 'canary' : `batch ${batch.index}`;
        for (const line of batch.forecast) io.stdout.write(`${name}: ${visible(line)}\n`);
      }
      for (const { id, reason } of plan.excluded)
        io.stdout.write(`${visible(`left out: ${id} (${reason})`)}\n`);
      // `rollout start` of this plan would be refused for the same reason.
      const empty = emptyPlanProblem(plan.service, plan);
      if (empty) throw new CliError([visible(empty)], EXIT.failed);
    });

  specOptions(rollout.command('start').argument('[service]').argument('[image]'))
    .description('start a rollout (see `rollout plan` for what it will do)')
    .option('--watch', 'follow it live until it ends (exit code as `rollout watch`)')
    .action(async (service: string | undefined, image: string | undefined, flags: SpecFlags) => {
      const spec = await specFrom(service, image, flags);
      const api = await client(flags);
      const status = await api
        .request<RolloutStatus>('POST', '/v1/rollouts', { spec })
        .catch(namingRefusal(flags, { service, image }));
      if (flags.watch) return watch(api, status.id, io, Boolean(flags.json));
      io.stdout.write(
        flags.json
          ? `${JSON.stringify(status)}\n`
          : `started rollout ${status.id}: ${status.counts.total} devices in ${status.batches.length} batches\n`,
      );
    });

  withConnection(rollout.command('status').argument('<id>', ROLLOUT_ID))
    .option('--service <name>', LATEST_OF)
    .description('a rollout per batch, with its failures; --devices lists its devices')
    .option('--json', 'the whole status as JSON')
    .option('--devices', 'list the rollout’s devices (all pages), each with its state')
    .option('--state <state>', 'with --devices: only devices in this state (e.g. failed)')
    .option('--batch <n>', 'with --devices: only this batch (0 is the canary when there is one)')
    .action(async (id: string, flags: StatusFlags) => {
      checkStatusFilters(flags);
      const api = await client(flags);
      const path = `/v1/rollouts/${await resolveRolloutId(api, id, flags.service)}`;
      if (flags.devices) {
        const devices = await api
          .all<RolloutDeviceStatus>(`${path}/devices`, { state: flags.state, batch: flags.batch })
          .catch(namingQuery({ 'querystring.state': '--state', 'querystring.batch': '--batch' }));
        if (flags.json) return void io.stdout.write(`${JSON.stringify(devices)}\n`);
        return void io.stdout.write(
          formatTable(
            ['DEVICE', 'BATCH', 'STATE', 'COMPLIANCE', 'ONLINE', 'IMAGE', 'REASON'],
            devices.map((d) => [
              d.id,
              String(d.batch),
              d.accepted ? `${d.state} (accepted)` : d.state,
              // What the device runs now against its manifest, whatever the rollout concluded.
              d.compliance ?? '-',
              d.online ? 'yes' : 'no',
              `${d.from} → ${d.to}`,
              // A failure's structured reason first; a device held back says why.
              d.failure ? `${d.failure.reason}: ${d.reason ?? ''}` : (d.hold ?? d.reason ?? ''),
            ]),
          ),
        );
      }
      const status = await api.request<RolloutStatus>('GET', path);
      io.stdout.write(flags.json ? `${JSON.stringify(status)}\n` : renderRollout(status));
    });

  withConnection(rollout.command('watch').argument('<id>', ROLLOUT_ID))
    .option('--service <name>', LATEST_OF)
    .description(
      'follow a rollout live; exits 0 when it succeeds, 1 when it fails, is aborted or rolled back',
    )
    .option('--json', 'one status JSON per line, as it changes')
    .action(async (id: string, flags: ConnectionFlags & { json?: boolean; service?: string }) => {
      const api = await client(flags);
      return watch(api, await resolveRolloutId(api, id, flags.service), io, Boolean(flags.json));
    });

  for (const action of ['pause', 'resume', 'approve', 'abort'] as const) {
    const what = {
      pause: 'stop starting new batches',
      resume: 'go on after a pause, accepting the failures so far (also approves)',
      approve:
        'let the batch an approval holds start (strategy.policy.approval, --approve-after-canary)',
      abort: 'stop; with autoRollback, return updated devices to their previous image',
    };
    withConnection(rollout.command(action).argument('<id>', ROLLOUT_ID))
      .description(what[action])
      .option('--service <name>', LATEST_OF)
      .option('--json', 'the status as JSON')
      .action(async (id: string, flags: ConnectionFlags & { json?: boolean; service?: string }) => {
        const api = await client(flags);
        const resolved = await resolveRolloutId(api, id, flags.service);
        const status = await api.request<RolloutStatus>(
          'POST',
          `/v1/rollouts/${resolved}/${action}`,
        );
        io.stdout.write(
          flags.json
            ? `${JSON.stringify(status)}\n`
            : `${visible(`rollout ${status.id}: ${status.state}${status.reason ? ` (${status.reason})` : ''}`)}\n`,
        );
      });
  }

  withConnection(rollout.command('ls'))
    .description('rollouts, newest first')
    .option('--service <name>', 'only this service')
    .option('--state <state>', 'only rollouts in this state')
    .option('--json', 'as JSON')
    .action(
      async (flags: ConnectionFlags & { service?: string; state?: string; json?: boolean }) => {
        const items = await (
          await client(flags)
        ).all<{
          id: string;
          service: string;
          targetImage: string;
          state: string;
          createdAt: string;
          reason?: string;
        }>('/v1/rollouts', { service: flags.service, state: flags.state });
        if (flags.json) return void io.stdout.write(`${JSON.stringify(items)}\n`);
        io.stdout.write(
          formatTable(
            ['ID', 'SERVICE', 'IMAGE', 'STATE', 'CREATED'],
            items.map((r) => [r.id, r.service, r.targetImage, r.state, r.createdAt]),
          ),
        );
      },
    );
}
