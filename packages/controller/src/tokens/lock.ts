import type { Prisma } from '../db/client.js';

/**
 * Token changes take turns (names unique among live tokens, never zero admins) under one
 * transaction-scoped advisory lock: the table has no constraint that could say either.
 */
export async function lockTokens(tx: Prisma.TransactionClient): Promise<void> {
  // executeRaw: the lock function returns void, a column type Prisma would not read back.
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext('podfleet.api_tokens'))`;
}
