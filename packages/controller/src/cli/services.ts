import type { Command } from 'commander';
import { commandGroup } from './command-group.js';
import { clientFor, naming, withConnection, type ConnectionFlags } from './api-client.js';
import type { CliIo } from './io.js';
import { readServiceSpecs } from './spec-file.js';
import { formatTable } from './table.js';
import type { RunningVersion } from '../compliance/versions.js';

interface ApplyFlags extends ConnectionFlags {
  file: string;
  force?: boolean;
  json?: boolean;
}

export function registerServices(program: Command, io: CliIo): void {
  const services = commandGroup(program, 'services', 'store and list service specs', io);

  withConnection(
    services
      .command('apply')
      .description(
        'store service specs: a changed spec becomes a new revision, the same one is kept',
      )
      .requiredOption('-f, --file <path>', 'service specs, YAML or JSON (- for standard input)')
      .option(
        '--force',
        'store a spec even when its image differs from the one a rollout put in place',
      )
      .option('--json', 'print the revisions as JSON'),
  )
    .addHelpText(
      'after',
      '\nRevisions run nowhere until assigned: podfleet assign GROUP SERVICE\n' +
        'A spec whose image differs from what a rollout put in place is refused (the next assign\n' +
        'would move the group back): put the rolled-out image in the file, or pass --force.\n' +
        '\nExample:\n  podfleet services apply -f examples/web.yaml',
    )
    .action(async (flags: ApplyFlags) => {
      // Every spec is checked before the first is sent, so a bad file stores nothing.
      const specs = await readServiceSpecs(flags.file, io);
      const api = await clientFor(flags);
      const applied = [];
      for (const spec of specs) {
        // Specs before a refused one stay stored; applying the file again leaves them unchanged.
        const revision = await api
          .applyService(spec, flags.force)
          .catch(
            naming({ 'body.spec.image': `${flags.file === '-' ? '<stdin>' : flags.file}: image` }),
          );
        applied.push(revision);
        if (!flags.json) {
          const what = revision.created ? 'created' : 'unchanged';
          io.stdout.write(`${revision.service}: revision ${revision.revision} ${what}\n`);
        }
      }
      if (flags.json) {
        const out = applied.map(({ service, revision, image, created }) => ({
          service,
          revision,
          image,
          created,
        }));
        io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      }
    });

  withConnection(
    services
      .command('ls')
      .description('list services with their latest revision and how many devices run which image')
      .option('--json', 'print the services as JSON'),
  ).action(async (flags: ConnectionFlags & { json?: boolean }) => {
    const list = await (await clientFor(flags)).services();
    if (flags.json) {
      io.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
      return;
    }
    io.stdout.write(
      formatTable(
        ['NAME', 'REVISION', 'IMAGE', 'RUNNING'],
        list.map((s) => [
          s.name,
          String(s.latest?.revision ?? '-'),
          s.latest?.image ?? '-',
          runningText(s.running),
        ]),
      ),
    );
  });
}

/**
 * The version distribution: `2 × web:1.8, 1 × web:1.4`, most devices first; `(2 image ids)` when
 * devices run different images under one reference (a tag that moved); --json lists them.
 */
export function runningText(running: readonly RunningVersion[]): string {
  if (running.length === 0) return '-';
  return running
    .map((v) => {
      const ids = v.imageIds.filter((entry) => entry.imageId !== null).length;
      return `${v.devices} × ${v.image}${ids > 1 ? ` (${ids} image ids)` : ''}`;
    })
    .join(', ');
}
