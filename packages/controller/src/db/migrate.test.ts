import { describe, expect, it } from 'vitest';
import { pendingMigrations } from './migrate.js';
import type { HistoryRow } from './migration-history.js';
import type { Migration } from './migrations.js';

const migration = (name: string, checksum = `sum-${name}`): Migration => ({
  name,
  sql: '',
  checksum,
});

const row = (name: string, overrides: Partial<HistoryRow> = {}): HistoryRow => ({
  id: `id-${name}`,
  checksum: `sum-${name}`,
  finished_at: new Date(),
  migration_name: name,
  logs: null,
  rolled_back_at: null,
  started_at: new Date(),
  applied_steps_count: 1,
  ...overrides,
});

describe('pendingMigrations', () => {
  const all = [migration('1_a'), migration('2_b'), migration('3_c')];

  it('is every migration not yet applied, in order', () => {
    expect(pendingMigrations(all, [row('1_a')]).map((m) => m.name)).toEqual(['2_b', '3_c']);
    expect(pendingMigrations(all, [row('1_a'), row('2_b'), row('3_c')])).toEqual([]);
  });

  it('applies again a migration that was rolled back (prisma migrate resolve --rolled-back)', () => {
    const history = [row('1_a'), row('2_b', { finished_at: null, rolled_back_at: new Date() })];

    expect(pendingMigrations(all, history).map((m) => m.name)).toEqual(['2_b', '3_c']);
  });

  it('refuses while a failed migration is unresolved', () => {
    const history = [row('1_a'), row('2_b', { finished_at: null, logs: 'boom' })];

    expect(() => pendingMigrations(all, history)).toThrow(
      /^migration 2_b failed earlier and is not resolved/,
    );
  });

  it('refuses when an applied migration changed, naming it and both checksums', () => {
    expect(() => pendingMigrations(all, [row('1_a', { checksum: 'other' })])).toThrow(
      'migration 1_a was modified after it was applied (checksum sum-1_a on disk, other in the database)',
    );
  });

  it('ignores applied migrations it does not have', () => {
    expect(pendingMigrations(all, [row('0_older'), row('1_a')]).map((m) => m.name)).toEqual([
      '2_b',
      '3_c',
    ]);
  });
});
