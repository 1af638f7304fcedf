import { describe, expect, it } from 'vitest';
import { MAX_LOG_BYTES, tailJournal } from './answer-command.js';

describe('tailJournal', () => {
  it('keeps the newest lines that fit the size bound, and says so', () => {
    const lines = Array.from(
      { length: 1000 },
      (_, i) => `${String(i).padStart(4, '0')} ${'x'.repeat(195)}`,
    );
    const kept = tailJournal(lines);
    expect(kept.truncated).toBe(true);
    expect(kept.lines.at(-1)).toBe(lines.at(-1));
    expect(kept.lines.join('\n').length).toBeLessThanOrEqual(MAX_LOG_BYTES);
    expect(kept.lines.length).toBe(Math.floor(MAX_LOG_BYTES / 201));
    expect(tailJournal(['a', 'b'])).toEqual({ lines: ['a', 'b'], truncated: false });
  });

  it('cuts a single huge line instead of dropping everything', () => {
    const [line] = tailJournal(['y'.repeat(100_000)]).lines;
    expect(line?.length).toBe(4097);
    expect(line?.endsWith('…')).toBe(true);
  });
});
