import { chmod, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PrismaClient } from '../db/client.js';
import { ADMIN_TOKEN_FILE } from '../serve/data-dir.js';
import { lockTokens } from '../tokens/lock.js';
import { issueToken } from './tokens.js';

/** The first admin token's name, and the actor of its audit row. */
export const BOOTSTRAP_TOKEN = 'bootstrap';

/**
 * On first start: when no live admin token exists, issues one named `bootstrap` and returns it
 * (the only time it exists in plain text); otherwise undefined. Controllers starting together
 * take turns, so a fleet gets one bootstrap token, not one per controller.
 */
export async function ensureAdminToken(prisma: PrismaClient): Promise<string | undefined> {
  return prisma.$transaction(async (tx) => {
    await lockTokens(tx);
    if (await tx.apiToken.count({ where: { role: 'admin', revokedAt: null } })) return undefined;
    const { token, hash } = issueToken();
    const row = await tx.apiToken.create({
      data: { name: BOOTSTRAP_TOKEN, role: 'admin', tokenHash: hash },
    });
    await tx.auditEntry.create({
      data: {
        actor: 'system',
        action: 'token.create',
        target: `token/${row.id}`,
        details: { name: BOOTSTRAP_TOKEN, role: 'admin' },
      },
    });
    return token;
  });
}

/**
 * Writes the token to `dataDir/admin-token`, readable by its owner only. Through a temporary
 * file and a rename, so that the file is never briefly readable by others nor half written.
 */
export async function writeAdminToken(dataDir: string, token: string): Promise<string> {
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  const temporary = `${file}.tmp-${process.pid}`;
  await writeFile(temporary, `${token}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
  return file;
}
