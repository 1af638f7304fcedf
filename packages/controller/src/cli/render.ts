import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { UnitFile, UnitScope, UnitStyle } from '@podfleet/shared';
import { CliError, type CliIo } from './io.js';
import { readServiceSpecs } from './spec-file.js';

interface RenderFlags {
  file: string;
  style: UnitStyle;
  scope?: UnitScope;
  out?: string;
  json?: boolean;
}

export function registerRender(program: Command, io: CliIo): void {
  program
    .command('render')
    .description('print the systemd units for a service spec (no controller needed)')
    .requiredOption('-f, --file <path>', 'service spec, YAML or JSON (- for standard input)')
    .option(
      '--style <style>',
      'service (podman generate systemd --new, Podman < 4.4) or quadlet',
      'service',
    )
    .option('--scope <scope>', 'system or user; overrides the spec')
    .option('--out <dir>', 'write the unit files into this directory instead of printing them')
    .option('--json', 'print the files as JSON: name, kind, installDir, contents')
    .addHelpText(
      'after',
      '\nExamples:\n  podfleet render -f web.yaml --style quadlet\n  podfleet render -f web.yaml --out /etc/systemd/system',
    )
    .action(async (flags: RenderFlags) => {
      if (flags.style !== 'service' && flags.style !== 'quadlet') {
        throw new CliError([`--style: must be service or quadlet, not ${flags.style}`]);
      }
      if (flags.scope !== undefined && flags.scope !== 'system' && flags.scope !== 'user') {
        throw new CliError([`--scope: must be system or user, not ${flags.scope}`]);
      }
      const specs = await readServiceSpecs(flags.file, io);
      const { renderUnits, unitDirectory } = await import('@podfleet/shared');
      const files = specs.flatMap((spec) =>
        renderUnits(spec, {
          style: flags.style,
          ...(flags.scope ? { scope: flags.scope } : {}),
        }).map((file) => ({ file, scope: flags.scope ?? spec.scope })),
      );
      if (flags.out) {
        await writeUnits(
          flags.out,
          files.map(({ file }) => file),
        );
        for (const { file, scope } of files) {
          io.stdout.write(
            `wrote ${join(flags.out, file.name)} (install in ${unitDirectory(file.kind, scope)})\n`,
          );
        }
        return;
      }
      if (flags.json) {
        const out = files.map(({ file, scope }) => ({
          ...file,
          installDir: unitDirectory(file.kind, scope),
        }));
        io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      io.stdout.write(files.map(({ file }) => file.contents).join('\n'));
    });
}

/** Each file written whole or not at all: a temporary file, then a rename. */
async function writeUnits(dir: string, files: UnitFile[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const file of files) {
    const target = join(dir, file.name);
    const temporary = `${target}.tmp-${process.pid}`;
    await writeFile(temporary, file.contents, { mode: 0o644 });
    await rename(temporary, target);
  }
}
