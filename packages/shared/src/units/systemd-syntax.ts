// systemd's unit-file syntax, both ways: escaping words for Exec*= lines (systemd.service(5),
// "Command lines"; systemd.unit(5), "Specifiers") and reading them back the way systemd does.

const NEEDS_QUOTES = /[ \t"']/;

/**
 * One argument of an Exec*= line. Mirrors Podman's escaping in `podman generate systemd`: `%` → `%%`
 * (specifiers) and `$` → `$$` (environment expansion); an argument with blanks or a double quote is
 * double-quoted with C escapes. Beyond Podman, it also quotes arguments with a single quote (which
 * systemd would read as an opening quote), the empty argument and a lone `;` (a command separator).
 */
export function escapeExecArg(arg: string): string {
  const text = arg.replaceAll('%', '%%').replaceAll('$', () => '$$');
  if (text === '' || text === ';' || NEEDS_QUOTES.test(text)) {
    return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  }
  return text.replaceAll('\\', '\\\\');
}

/** A value where systemd resolves specifiers but splits nothing (Description=, ListenStream=). */
export function escapeSpecifiers(value: string): string {
  return value.replaceAll('%', '%%');
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
    while (i < n && /\s/.test(value[i]!)) i++;
    if (i >= n) break;
    let word = '';
    let quote: string | undefined;
    for (; i < n; i++) {
      const c = value[i]!;
      if (quote) {
        if (c === quote) quote = undefined;
        else if (c === '\\') [word, i] = unescapeAt(value, i, word);
        else word += c;
      } else if (/\s/.test(c)) {
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

/**
 * Reads a unit file into (section, key, value) entries in order: comments and blank lines dropped,
 * a line ending in a backslash joined with the next (the backslash becomes a space), as systemd does.
 */
export function parseUnitFile(text: string): UnitFileEntry[] {
  const entries: UnitFileEntry[] = [];
  let section = '';
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      section = line.slice(1, -1);
      continue;
    }
    while (line.endsWith('\\') && i + 1 < lines.length) {
      const next = lines[++i]!;
      if (next.trimStart().startsWith('#') || next.trimStart().startsWith(';')) continue;
      line = `${line.slice(0, -1)} ${next.trim()}`;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw new UnitSyntaxError(`not key=value in [${section}]: ${line}`);
    entries.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return entries;
}

/** The values of one key in one section, in order. */
export function unitValues(entries: UnitFileEntry[], section: string, key: string): string[] {
  return entries.filter((e) => e.section === section && e.key === key).map((e) => e.value);
}
