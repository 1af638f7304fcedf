import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { cutPage, decodeCursor, encodeCursor } from './pages.js';
import { HttpError } from './errors.js';

const Key = z.tuple([z.string(), z.number()]);

describe('pages', () => {
  it('reads back the key it wrote', () => {
    expect(decodeCursor(encodeCursor(['pi-1', 7]), Key)).toEqual(['pi-1', 7]);
  });

  it.each(['', 'garbage', encodeCursor(['pi-1']), Buffer.from('{"a":1}').toString('base64url')])(
    'refuses %j as a cursor with a 400 naming the field',
    (cursor) => {
      const error = (() => {
        try {
          decodeCursor(cursor, Key);
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toBeInstanceOf(HttpError);
      expect(error).toMatchObject({ statusCode: 400 });
      expect((error as Error).message).toMatch(/^querystring\.cursor: /);
    },
  );

  it('gives a next cursor only when a row beyond the page was fetched', () => {
    const rows = [1, 2, 3];
    const key = (row: number) => ['k', row];
    expect(cutPage(rows, 2, key, String)).toEqual({
      items: ['1', '2'],
      nextCursor: encodeCursor(['k', 2]),
    });
    expect(cutPage(rows, 3, key, String)).toEqual({ items: ['1', '2', '3'], nextCursor: null });
  });
});
