// systemd's unit-file syntax, both ways: escaping words for Exec*= lines (systemd.service(5),
// "Command lines"; systemd.unit(5), "Specifiers") and reading files back the way systemd (or, for a
// `.container`, Quadlet) does.

const NEEDS_QUOTES = /[ \t"']/;

/** systemd's WHITESPACE (src/basic/string-util.h): all it splits words on and strips from values. */
const SYSTEMD_BLANK = /[ \t\n\r]/;
/** Go's unicode.IsSpace, which Quadlet's strings.TrimSpace strips from both ends of every line. */
export const QUADLET_BLANK =
  /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/**
 * One argument of an Exec*= line. Mirrors Podman's escaping in `podman generate systemd`: `%` → `%%`
 * (specifiers) and `$` → `$$` (environment expansion); an argument with blanks or a double quote is
 * double-quoted with C escapes. Beyond Podman, it also quotes arguments with a single quote (which
 * systemd would read as an opening quote), the empty argument and a lone `;` (a command separator).
 */
export function escapeExecArg(arg: string): string {
  const text = escapeExpansions(arg);
  if (text === '' || text === ';' || NEEDS_QUOTES.test(text)) return quote(text);
  return text.replaceAll('\\', '\\\\');
}

/** escapeExecArg, but always double-quoted: the line then ends in the quote, whatever the argument. */
export function quoteExecArg(arg: string): string {
  return quote(escapeExpansions(arg));
}

/**
 * A value where systemd resolves specifiers but splits nothing (ListenStream=): `%` → `%%`. A value
 * that ends in a backslash would continue the line, so it gets `%i`, which systemd expands to
 * nothing in a unit that is not a template (service names cannot contain `@`).
 */
export function escapeSpecifiers(value: string): string {
  const text = value.replaceAll('%', '%%');
  return text.endsWith('\\') ? `${text}%i` : text;
}

/** `%` → `%%` (specifiers), `$` → `$$` (environment expansion). */
function escapeExpansions(arg: string): string {
  return arg.replaceAll('%', '%%').replaceAll('$', () => '$$');
}

/** What Go's strconv.Quote escapes: all but letters, marks, numbers, punctuation, symbols, space. */
const NOT_GO_PRINTABLE = /[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/gu;
const GO_NAMED: Record<string, string> = {
  '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v',
}; // prettier-ignore

/**
 * Double-quoted as Podman quotes (Go's strconv.Quote): `\` and `"` backslash-escaped, a tab as
 * `\t`, other unprintable characters (Unicode blanks, format characters) as `\u00a0` or
 * `\U000e0001`. systemd's C unescaping reads each back as the character.
 */
function quote(text: string): string {
  const escaped = text
    .replaceAll('\\', '\\\\')
    .replaceAll('"', '\\"')
    .replace(NOT_GO_PRINTABLE, (char) => {
      const code = char.codePointAt(0)!;
      if (GO_NAMED[char]) return GO_NAMED[char];
      if (code < 0x80) return `\\x${code.toString(16).padStart(2, '0')}`;
      if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
      return `\\U${code.toString(16).padStart(8, '0')}`;
    });
  return `"${escaped}"`;
}

const C_ESCAPES: Record<string, string> = {
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
  '\\': '\\', '"': '"', "'": "'", s: ' ',
}; // prettier-ignore

export class UnitSyntaxError extends Error {}

/**
 * Splits an Exec*= value into argv the way systemd does: specifiers first (`%%` → `%`; a real
 * specifier such as `%t` comes out as `{%t}` so that it stays visible), then words with
 * single/double quotes and C escapes, then `$$` → `$` (a `$NAME` or `${NAME}` comes out as
 * `{$NAME}`). The leading `-@:+!` prefixes of the executable are kept as written.
 */
export function splitExecLine(value: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = value.length;
  while (i < n) {
    while (i < n && SYSTEMD_BLANK.test(value[i]!)) i++;
    if (i >= n) break;
    let word = '';
    let quote: string | undefined;
    for (; i < n; i++) {
      const c = value[i]!;
      if (quote) {
        if (c === quote) quote = undefined;
        else if (c === '\\') [word, i] = unescapeAt(value, i, word);
        else word += c;
      } else if (SYSTEMD_BLANK.test(c)) {
        break;
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === '\\') {
        [word, i] = unescapeAt(value, i, word);
      } else {
        word += c;
      }
    }
    if (quote) throw new UnitSyntaxError(`unterminated ${quote} quote in: ${value}`);
    words.push(word);
  }
  return words.map(resolveMarkers);
}

function unescapeAt(value: string, i: number, word: string): [string, number] {
  const next = value[i + 1];
  if (next === undefined) throw new UnitSyntaxError(`trailing backslash in: ${value}`);
  if (next in C_ESCAPES) return [word + C_ESCAPES[next], i + 1];
  const hex = /^x([0-9a-fA-F]{2})/.exec(value.slice(i + 1));
  if (hex) return [word + String.fromCharCode(parseInt(hex[1]!, 16)), i + 3];
  const uni = /^u([0-9a-fA-F]{4})/.exec(value.slice(i + 1));
  if (uni) return [word + String.fromCodePoint(parseInt(uni[1]!, 16)), i + 5];
  const wide = /^U([0-9a-fA-F]{8})/.exec(value.slice(i + 1));
  if (wide) return [word + String.fromCodePoint(parseInt(wide[1]!, 16)), i + 9];
  const oct = /^([0-7]{3})/.exec(value.slice(i + 1));
  if (oct) return [word + String.fromCharCode(parseInt(oct[1]!, 8)), i + 3];
  throw new UnitSyntaxError(`unknown escape \\${next} in: ${value}`);
}

function resolveMarkers(word: string): string {
  let out = '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!;
    const next = word[i + 1];
    if (c === '%') {
      if (next === undefined) throw new UnitSyntaxError(`lone % at the end of: ${word}`);
      out += next === '%' ? '%' : `{%${next}}`;
      i++;
    } else if (c === '$') {
      if (next === '$') {
        out += '$';
        i++;
      } else {
        const name = /^(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(
          word.slice(i + 1),
        );
        if (!name) {
          out += '$';
          continue;
        }
        out += `{$${name[1] ?? name[2]}}`;
        i += name[0].length;
      }
    } else {
      out += c;
    }
  }
  return out;
}

export interface UnitFileEntry {
  section: string;
  key: string;
  value: string;
}

/** Who reads the file: systemd (units), or Quadlet (Podman 5.4), which reads `.container` files. */
export type UnitFileReader = 'systemd' | 'quadlet';

/**
 * Reads a unit file into (section, key, value) entries in order, comments and blank lines dropped,
 * by the line rules of its reader (see systemdLines and quadletLines). Keys and values are
 * stripped of systemd's blanks; Quadlet strips its own from the line first.
 */
export function parseUnitFile(text: string, reader: UnitFileReader = 'systemd'): UnitFileEntry[] {
  const entries: UnitFileEntry[] = [];
  let section = '';
  for (const logical of reader === 'quadlet' ? quadletLines(text) : systemdLines(text)) {
    const line = stripBlanks(logical);
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      section = line.slice(1, -1);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new UnitSyntaxError(`not key=value in [${section}]: ${line}`);
    const key = stripBlanks(line.slice(0, eq));
    entries.push({ section, key, value: stripBlanks(line.slice(eq + 1)) });
  }
  return entries;
}

/**
 * systemd's config_parse (src/shared/conf-parser.c): a line whose first non-blank is `#` or `;` is
 * a comment, even inside a continuation; a line that ends in an odd number of backslashes (the
 * last one not itself escaped) continues on the next, the backslash becoming a space and the next
 * line appended as it is.
 */
function systemdLines(text: string): string[] {
  const lines: string[] = [];
  let continuation: string | undefined;
  for (const raw of text.split(/\r\n|\r|\n/)) {
    if (/^[ \t]*[#;]/.test(raw)) continue;
    const joined = (continuation ?? '') + raw;
    if (/(?<!\\)(?:\\\\)*\\$/.test(raw)) {
      continuation = `${joined.slice(0, -1)} `;
      continue;
    }
    continuation = undefined;
    lines.push(joined);
  }
  if (continuation !== undefined) lines.push(continuation);
  return lines;
}

/**
 * Quadlet's UnitFile.Parse (Podman 5.4, pkg/systemd/parser/unitfile.go): every line is trimmed of
 * Go's Unicode blanks; a line that ends in any backslash, escaped or not, continues on the next,
 * the backslash dropped and the lines joined with nothing between them; comment and blank lines
 * inside a continuation are skipped.
 */
function quadletLines(text: string): string[] {
  const lines = text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let remaining = '';
  lines.forEach((raw, index) => {
    let line = trimQuadletBlanks(raw);
    if (line === '' || line.startsWith('#') || line.startsWith(';')) {
      if (remaining === '') out.push(line);
      return;
    }
    if (line.endsWith('\\')) {
      line = line.slice(0, -1);
      if (index !== lines.length - 1) {
        remaining += line;
        return;
      }
    }
    out.push(remaining + line);
    remaining = '';
  });
  return out;
}

function stripBlanks(text: string): string {
  return trim(text, SYSTEMD_BLANK);
}

function trimQuadletBlanks(text: string): string {
  return trim(text, QUADLET_BLANK);
}

function trim(text: string, blank: RegExp): string {
  let start = 0;
  let end = text.length;
  while (start < end && blank.test(text[start]!)) start++;
  while (end > start && blank.test(text[end - 1]!)) end--;
  return text.slice(start, end);
}

/** The values of one key in one section, in order. */
export function unitValues(entries: UnitFileEntry[], section: string, key: string): string[] {
  return entries.filter((e) => e.section === section && e.key === key).map((e) => e.value);
}
