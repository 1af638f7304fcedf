import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../db/client.js';
import { createScratchDatabase, type ScratchDatabase } from '../db/testing.js';
import { ensureAdminToken, writeAdminToken } from './bootstrap.js';
import { hashToken } from './tokens.js';

describe('the bootstrap admin token', () => {
  let scratch: ScratchDatabase;
  let db: Database;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    db = await openDatabase({ DATABASE_URL: scratch.url });
    await db.migrate();
  });
  afterAll(async () => {
    await db?.close();
    await scratch?.drop();
  });

  it('is issued once, by one of several controllers starting together', async () => {
    const tokens = await Promise.all([1, 2, 3].map(() => ensureAdminToken(db.prisma)));
    const issued = tokens.filter((token) => token !== undefined);
    expect(issued).toHaveLength(1);
    const rows = await db.prisma.apiToken.findMany();
    expect(rows).toMatchObject([{ name: 'bootstrap', role: 'admin', revokedAt: null }]);
    expect(rows[0]!.tokenHash).toBe(hashToken(issued[0]!));
    expect(await db.prisma.auditEntry.findMany()).toMatchObject([
      { actor: 'system', action: 'token.create', details: { name: 'bootstrap', role: 'admin' } },
    ]);
    expect(await ensureAdminToken(db.prisma)).toBeUndefined();
  });

  it('is issued again only when no live admin token is left', async () => {
    await db.prisma.apiToken.updateMany({ data: { revokedAt: new Date() } });
    expect(await ensureAdminToken(db.prisma)).toMatch(/^pft_/);
  });

  it('is written for its owner only, replacing what was there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'podfleet-bootstrap-'));
    try {
      await writeFile(join(dir, 'admin-token'), 'old\n', { mode: 0o644 });
      const file = await writeAdminToken(dir, 'pft_new');
      expect(file).toBe(join(dir, 'admin-token'));
      expect(await readFile(file, 'utf8')).toBe('pft_new\n');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
