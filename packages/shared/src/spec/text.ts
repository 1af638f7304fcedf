import { z } from 'zod';

/**
 * Why a string cannot go into a unit file, or undefined when it can. A newline would start a new
 * unit-file line, NUL ends the C string systemd reads, and other control characters are never
 * meant; everything else is escaped by the renderers.
 */
export function unitTextProblem(value: string): string | undefined {
  if (!value.isWellFormed()) return 'invalid Unicode (lone surrogate) not allowed';
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x0a || code === 0x0d) return 'newline not allowed';
    if (code === 0) return 'NUL not allowed';
    if (code < 0x20 || code === 0x7f) {
      return `control character U+${code.toString(16).toUpperCase().padStart(4, '0')} not allowed`;
    }
  }
  return undefined;
}

/** A string that may reach a unit file: rejected with the reason if it cannot. */
export const unitText = z.string().superRefine((value, ctx) => {
  const problem = unitTextProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

/** Zod issues as one line each: `env.GREETING: newline not allowed`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${formatPath(issue.path) || '(root)'}: ${issue.message}`);
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}
