import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { terminalIo, visible } from './terminal-text.js';

describe('visible', () => {
  it('shows escape sequences, C1 controls and the C0 controls a terminal acts on', () => {
    expect(visible('\x1b[2J\x1b]0;owned\x07')).toBe('\\x1b[2J\\x1b]0;owned\\x07');
    expect(visible('\x9b31m red \x9d0;t\x9c')).toBe('\\u009b31m red \\u009d0;t\\u009c');
    expect(visible('ok\rFAILED\b\b\x7f')).toBe('ok\\rFAILED\\x08\\x08\\u007f');
    expect(visible('a\x00b')).toBe('a\\x00b');
  });

  it('shows bidi controls, which would reorder what follows them, and line separators', () => {
    expect(visible('pi-\u202e71-ip\u202c')).toBe('pi-\\u202e71-ip\\u202c');
    expect(visible('\u2066\u2067\u2068\u2069\u202a\u202b\u202d\u200e\u200f\u061c')).toBe(
      '\\u2066\\u2067\\u2068\\u2069\\u202a\\u202b\\u202d\\u200e\\u200f\\u061c',
    );
    expect(visible('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
  });

  it('keeps newlines and tabs only where asked', () => {
    expect(visible('a\tb\nc')).toBe('a\\tb\\nc');
    expect(visible('a\tb\nc', 'tabs')).toBe('a\tb\\nc');
    expect(visible('a\tb\nc\x1b', 'layout')).toBe('a\tb\nc\\x1b');
  });

  it('keeps every other character as it is: accents, CJK, emoji and their joiners', () => {
    const text = 'Zürich 東京 🇩🇪 👩‍💻 e\u0301 → ✓ — "quotes" \\x1b';
    expect(visible(text)).toBe(text);
  });

  it('shows a lone surrogate rather than letting it become U+FFFD unseen', () => {
    expect(visible('a\ud800b')).toBe('a\\ud800b');
  });

  it('leaves JSON valid and its strings unchanged', () => {
    const values = { reason: 'x\x9b2J\u202e\x7f\x1b[2J\n' };
    const json = visible(JSON.stringify(values, null, 2), 'layout');
    expect(json).not.toMatch(/[\x7f-\x9f\u202e]/);
    expect(JSON.parse(json)).toEqual(values);
  });
});

describe('terminalIo', () => {
  const capture = (isTTY: boolean) => {
    const out: string[] = [];
    const stdout = Object.assign({ write: (text: string) => out.push(text) }, { isTTY });
    const io = terminalIo({ stdout, stderr: stdout, stdin: Readable.from([]) });
    return { io, out };
  };

  it('shows the controls of whatever a command writes, keeping its lines', () => {
    const { io, out } = capture(false);
    io.stdout.write('a\x1b[2J\tb\n');
    io.stderr.write('\x9b\n');
    expect(out).toEqual(['a\\x1b[2J\tb\n', '\\u009b\n']);
    expect(io.redraw).toBeUndefined();
  });

  it('redraws a terminal: its own clear-screen sequence, then the screen with controls shown', () => {
    const { io, out } = capture(true);
    io.redraw!('state running\n  pi-1: \x1b[2Jbad\n');
    expect(out).toEqual(['\x1b[H\x1b[2Jstate running\n  pi-1: \\x1b[2Jbad\n']);
  });
});
