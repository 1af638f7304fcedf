import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { DEFAULT_DATA_DIR, SIGNING_KEY_FILE } from '../serve/data-dir.js';
import { commandGroup } from './command-group.js';
import { CliError, EXIT, type CliIo } from './io.js';

interface KeyFlags {
  data?: string;
  json?: boolean;
}

/** `podfleet keys show|rotate`: the manifest-signing key, on the controller's host. */
export function registerKeys(program: Command, io: CliIo): void {
  const keys = commandGroup(
    program,
    'keys',
    'the manifest-signing key (on the controller host)',
    io,
  );
  const dataOf = (flags: KeyFlags) => flags.data ?? process.env.PODFLEET_DATA ?? DEFAULT_DATA_DIR;

  keys
    .command('show')
    .description('print the key id and public key agents trust, and its rotation chain')
    .option('--data <dir>', 'data directory (env PODFLEET_DATA, default .podfleet)')
    .option('--json', 'print as JSON')
    .action(async (flags: KeyFlags) => {
      const dir = dataOf(flags);
      if (!process.env.PODFLEET_SIGNING_KEY?.trim() && !existsSync(join(dir, SIGNING_KEY_FILE))) {
        throw new CliError([
          `no signing key in ${dir} (podfleet serve creates it at its first start)`,
        ]);
      }
      const { loadSigningKey } = await import('../keys/signing-key.js');
      const { key } = loadSigningKey(process.env, dir);
      const chain = (key.endorsements ?? []).map((e) => `${e.endorsedBy} → ${e.keyId}`);
      if (flags.json) {
        const { keyId, publicKeyPem, endorsements = [] } = key;
        io.stdout.write(`${JSON.stringify({ keyId, publicKeyPem, endorsements }, null, 2)}\n`);
        return;
      }
      io.stdout.write(
        `key ${key.keyId}${chain.length ? ` (rotations: ${chain.join(', ')})` : ''}\n${key.publicKeyPem}`,
      );
    });

  keys
    .command('rotate')
    .description('replace the signing key with a new one, announced to agents signed by the old')
    .option('--data <dir>', 'data directory (env PODFLEET_DATA, default .podfleet)')
    .option('--json', 'print the old and new key ids as JSON')
    .addHelpText(
      'after',
      `
Restart the controller(s) afterwards: at start they sign every device's manifest again with the
new key under a new generation, carrying the endorsement; each agent checks it against the key it
trusts, trusts the new key alone from then on, and refuses manifests signed by the old one.
Several controllers share the key through PODFLEET_SIGNING_KEY: rotate in one data directory,
then give every controller the new key file and manifest-signing-key.chain.json
(PODFLEET_SIGNING_KEY and PODFLEET_SIGNING_KEY_CHAIN).`,
    )
    .action(async (flags: KeyFlags) => {
      if (process.env.PODFLEET_SIGNING_KEY?.trim()) {
        throw new CliError([
          'PODFLEET_SIGNING_KEY is set: rotate in a data directory (unset it, --data DIR), then hand the new key and chain to the controllers',
        ]);
      }
      const dir = dataOf(flags);
      const { rotateSigningKey } = await import('../keys/rotation.js');
      const rotation = await rotateSigningKey(dir).catch((error: Error) => {
        const missing = error.message.startsWith('no ');
        throw new CliError(
          [`rotating the key in ${dir}: ${error.message}`],
          missing ? EXIT.badInput : EXIT.failed,
        );
      });
      const from = rotation.previous.keyId;
      const to = rotation.key.keyId;
      io.stdout.write(
        flags.json
          ? `${JSON.stringify({ previous: from, key: to, dataDir: dir })}\n`
          : `rotated the manifest-signing key ${from} → ${to} in ${dir}; restart the controller(s) to re-sign and publish every manifest\n`,
      );
    });
}
