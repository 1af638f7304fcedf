import type { Command } from 'commander';
import { CliError, EXIT, type CliIo } from './io.js';

export function registerMigrate(program: Command, io: CliIo): void {
  program
    .command('migrate')
    .description('apply pending database migrations (serve also does this at start)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nUses DATABASE_URL, or the embedded store under PODFLEET_DATA when it is unset.',
    )
    .action(async (flags: { json?: boolean }) => {
      // Prisma loads here, not with the CLI: other commands and --help start without it.
      const { openDatabase } = await import('../db/client.js');
      const db = await openDatabase({
        DATABASE_URL: process.env.DATABASE_URL,
        PODFLEET_DATA: process.env.PODFLEET_DATA,
      });
      try {
        const result = await db.migrate().catch((error: Error) => {
          throw new CliError([error.message], EXIT.failed);
        });
        if (flags.json) {
          io.stdout.write(`${JSON.stringify({ database: db.location, ...result })}\n`);
          return;
        }
        io.stdout.write(
          result.applied.length > 0
            ? `applied ${result.applied.length} migration(s) to ${db.location}: ${result.applied.join(', ')}\n`
            : `${db.location} is up to date\n`,
        );
        if (result.unknown.length > 0) {
          io.stdout.write(
            `note: applied by a newer podfleet, unknown here: ${result.unknown.join(', ')}\n`,
          );
        }
      } finally {
        await db.close();
      }
    });
}
