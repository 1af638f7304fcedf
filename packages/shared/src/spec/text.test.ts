import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { formatIssues, printable } from './text.js';

describe('printable', () => {
  it.each([
    ['\u001b[2J', '\\x1b[2J'],
    ['a\nb\r\tc', 'a\\nb\\r\\tc'],
    ['\u0000\u007f\u009b', '\\x00\\x7f\\x9b'],
    ['\u202eevil\u2066', '\\u202eevil\\u2066'],
    ['line\u2028next', 'line\\u2028next'],
    ['lone \ud800', 'lone \\ud800'],
    ['grüße, 東京 🚀', 'grüße, 東京 🚀'],
  ])('shows %j as %j', (input, shown) => {
    expect(printable(input)).toBe(shown);
  });

  it('cuts a long value, says how much it left out, and never splits a surrogate pair', () => {
    expect(printable('A'.repeat(10 * 1024 * 1024), 10)).toBe(
      `${'A'.repeat(10)}…(${10 * 1024 * 1024 - 10} more characters)`,
    );
    expect(printable(`${'A'.repeat(9)}🚀tail`, 10)).toBe(`${'A'.repeat(9)}…(6 more characters)`);
  });

  it('changes nothing in a line it already showed', () => {
    const once = printable('\u001b]0;title\u0007 \u202e');
    expect(printable(once)).toBe(once);
  });
});

describe('formatIssues', () => {
  it('shows keys and messages that echo input with control characters escaped, bounded', () => {
    const schema = z.strictObject({ env: z.record(z.string(), z.number()) });
    const key = `\u001b[31m${'K'.repeat(1000)}`;
    const parsed = schema.safeParse({ env: { [key]: 'x' }, [`\u009b${'U'.repeat(1000)}`]: 1 });
    const lines = formatIssues(parsed.error!);
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toMatch(/\p{Cc}/u);
      expect(line.length).toBeLessThan(300);
    }
    expect(lines.join('\n')).toContain('env.\\x1b[31mKKK');
    expect(lines.join('\n')).toContain('\\x9bUUU');
  });
});
