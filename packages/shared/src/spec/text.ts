import { z } from 'zod';

/**
 * Why a string cannot go into a unit file, or undefined when it can. A newline would start a new
 * unit-file line, NUL ends the C string systemd reads, and other control characters are never
 * meant; everything else is escaped by the renderers. A tab is allowed where the string becomes
 * one word of a command line (`tab`): the renderers then quote it and write the tab as `\t`, as
 * `podman generate systemd` does (docs/decisions/001-unit-rendering.md).
 */
export function unitTextProblem(value: string, { tab = false } = {}): string | undefined {
  if (!value.isWellFormed()) return 'invalid Unicode (lone surrogate) not allowed';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x0a || code === 0x0d) return 'newline not allowed';
    if (code === 0) return 'NUL not allowed';
    if (code === 0x09 && tab) continue;
    if (code < 0x20 || code === 0x7f) {
      return `control character U+${code.toString(16).toUpperCase().padStart(4, '0')} not allowed`;
    }
  }
  return undefined;
}

const unitTextOf = (options: { tab?: boolean }) =>
  z.string().superRefine((value, ctx) => {
    const problem = unitTextProblem(value, options);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** A string that may reach a unit file: rejected with the reason if it cannot. */
export const unitText = unitTextOf({});

/**
 * unitText that becomes one word of a command line (an env or label value, a command argument),
 * where a tab is allowed as well.
 */
export const unitWord = unitTextOf({ tab: true });

// C0 and C1 controls, DEL, format characters (bidi overrides, zero-width), line and paragraph
// separators, lone surrogates: what a terminal or a log viewer would act on or hide.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` safe to echo in a one-line message: cut to `max` characters (saying how many were left
 * out), control and format characters shown as escapes (`\x1b`, `\u202e`). The escapes are
 * plain ASCII, so a layer that applies it again to a line already shown this way changes nothing.
 */
export function printable(text: string, max = 200): string {
  let cut = text;
  if (text.length > max) {
    let end = max;
    const last = text.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end -= 1; // keep a surrogate pair whole
    cut = `${text.slice(0, end)}…(${text.length - end} more characters)`;
  }
  return cut.replace(
    UNPRINTABLE,
    (char) =>
      NAMED[char] ??
      (char.charCodeAt(0) <= 0xff
        ? `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`
        : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`),
  );
}

/** Zod issues as one line each: `env.GREETING: newline not allowed`; echoed input is bounded. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map(
    (issue) => `${formatPath(issue.path) || '(root)'}: ${printable(issue.message)}`,
  );
}

/** `env.GREETING`, `ports[0]`; keys come from input, so each is shown through `printable`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${printable(String(key), 64)}` : printable(String(key), 64);
  }
  return out;
}
