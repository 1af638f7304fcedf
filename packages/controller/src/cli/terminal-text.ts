import type { CliIo } from './io.js';

/**
 * What a terminal may act on instead of showing: C0 and C1 controls and DEL (ESC and CSI start
 * escape sequences, BEL rings, CR and BS overwrite), bidi controls (they reorder what follows),
 * line and paragraph separators, and lone surrogates.
 */
const ACTIVE = /[\p{Cc}\p{Cs}\p{Bidi_Control}\u2028\u2029]/gu;

const SHORT: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * What may stay as it is: nothing (a table cell, a field inside a line), tabs (one log line), or
 * tabs and newlines (a whole text whose lines the CLI laid out itself).
 */
export type Kept = 'nothing' | 'tabs' | 'layout';

/**
 * Text as the terminal should show it, never act on it: every character of ACTIVE becomes an
 * escape (`\x1b`, `\r`, `\u009b`, `\u202e`), everything else is kept. C0 controls read as in C
 * (`\x1b`), the others as in JSON (`\u009b`), so `--json` output stays valid JSON that decodes to
 * the same strings. A backslash is kept as it is: a device can write the four characters `\x1b`,
 * which then read like an escaped ESC; `--json` tells them apart.
 */
export function visible(text: string, kept: Kept = 'nothing'): string {
  return text.replace(ACTIVE, (char) => {
    if (char === '\t' && kept !== 'nothing') return char;
    if (char === '\n' && kept === 'layout') return char;
    const short = SHORT[char];
    if (short) return short;
    const code = char.charCodeAt(0);
    return code < 0x20
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** ANSI: cursor home, erase the screen (`rollout watch` redraws its view in place). */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

/**
 * The streams every command writes through: whatever a command prints, from the controller or
 * a device, reaches the terminal with its control characters shown (newlines and tabs kept).
 * The one sequence the CLI sends on its own account, clearing the screen, is `redraw`, given only
 * when standard output is a terminal.
 */
export function terminalIo(io: CliIo): CliIo {
  const shown = (stream: CliIo['stdout']): CliIo['stdout'] => ({
    write: (chunk: string) => stream.write(visible(chunk, 'layout')),
  });
  const tty = (io.stdout as { isTTY?: boolean }).isTTY === true;
  return {
    stdout: shown(io.stdout),
    stderr: shown(io.stderr),
    stdin: io.stdin,
    ...(tty
      ? { redraw: (screen: string) => io.stdout.write(CLEAR_SCREEN + visible(screen, 'layout')) }
      : {}),
  };
}
