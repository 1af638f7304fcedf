import { describe, expect, it } from 'vitest';
import { formatTable } from './table.js';

describe('formatTable', () => {
  it('keeps a cell on its row: newlines, tabs and escapes in it are shown, columns stay aligned', () => {
    expect(
      formatTable(
        ['ID', 'WHAT'],
        [
          ['pi-1\x1b[2J', 'ok\nfake-row  forged'],
          ['pi-2', 'a\tb\u009b'],
        ],
      ),
    ).toBe(
      [
        'ID           WHAT',
        'pi-1\\x1b[2J  ok\\nfake-row  forged',
        'pi-2         a\\tb\\u009b',
        '',
      ].join('\n'),
    );
  });
});
