import { z } from 'zod';
import { badRequest } from './errors.js';

/** `limit` and `cursor`, the querystring every list endpoint takes. */
export const PageQuery = {
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** Opaque: the `nextCursor` of the previous page, as it came. */
  cursor: z.string().max(1024).optional(),
};

/** `{ items, nextCursor }`: nextCursor is null on the last page. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), nextCursor: z.string().nullable() });
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/**
 * A cursor is the sort key of the last row of a page, so the next page starts after it even when
 * rows are added or removed in between (keyset pagination, never OFFSET). It is opaque to clients
 * but not secret: its values are checked by `key` and only ever used as query parameters.
 */
export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor<T>(cursor: string, key: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  const parsed = key.safeParse(value);
  if (!parsed.success) {
    throw badRequest('querystring.cursor: not a cursor of this list (pass nextCursor as given)');
  }
  return parsed.data;
}

/**
 * Cuts rows fetched with `take: limit + 1` into a page: the extra row only says that there is a
 * next page, whose cursor is the key of the last row shown.
 */
export function cutPage<Row, Item>(
  rows: readonly Row[],
  limit: number,
  keyOf: (row: Row) => readonly (string | number)[],
  view: (row: Row) => Item,
): Page<Item> {
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    items: shown.map(view),
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(keyOf(last)) : null,
  };
}
