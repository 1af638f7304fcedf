import { existsSync } from 'node:fs';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTree } from './cache.js';
import { failure, run } from './run.js';

/** What systemd made of one unit file, from its own dump. */
export interface UnitReading {
  /** Each Exec*= command by key (ExecStart, ExecStop, …) as argv, specifiers resolved. */
  exec: Record<string, string[][]>;
  /** Each Listen*= address of a socket unit. */
  listen: string[];
}

const SYSTEMD = ['/usr/lib/systemd/systemd', '/lib/systemd/systemd'].find((path) =>
  existsSync(path),
);

/**
 * How systemd itself reads unit files: `systemd --test --system --unit=UNIT` loads UNIT and what it
 * pulls in (our files first, then the host's units) into a manager in test mode, dumps every
 * loaded unit and exits; nothing is started. The dump gives each command line as argv after
 * specifiers (shell-quoted, `$` not yet expanded) and each socket address (C-escaped). Test mode
 * refuses to run as root: as root, it runs as nobody.
 */
export async function readUnits(
  files: { name: string; contents: string }[],
  unit: string,
): Promise<Map<string, UnitReading>> {
  if (!SYSTEMD) throw new Error('no systemd binary in /usr/lib/systemd or /lib/systemd');
  const work = await mkdtemp(join(tmpdir(), 'podfleet-reading-'));
  try {
    await chmod(work, 0o755);
    for (const file of files)
      await writeFile(join(work, file.name), file.contents, { mode: 0o644 });
    const args = ['--test', '--system', `--unit=${unit}`, '--no-pager'];
    const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups', SYSTEMD];
    const asRoot = process.getuid?.() === 0;
    const result = await run(asRoot ? 'setpriv' : SYSTEMD, asRoot ? [...nobody, ...args] : args, {
      // The trailing colon appends the host's unit path, for the targets our units depend on.
      env: { PATH: process.env.PATH, HOME: work, LANG: 'C.UTF-8', SYSTEMD_UNIT_PATH: `${work}:` },
      cwd: work,
    });
    if (result.code !== 0) throw new Error(`systemd --test: ${failure(result)}`);
    return parseDump(result.stdout, new Set(files.map((file) => file.name)));
  } finally {
    await removeTree(work);
  }
}

/**
 * A word as the process receives it: systemd expands `$$` to `$` when it runs the command, and a
 * `$NAME` or `${NAME}` to a variable, which is shown as `{$NAME}` so that a comparison catches it.
 */
export function asExecuted(word: string): string {
  return word.replace(/\$(\$|\{[A-Za-z_]\w*\}|[A-Za-z_]\w*)/g, (whole, rest: string) =>
    rest === '$' ? '$' : `{${whole.replace(/[{}]/g, '')}}`,
  );
}

function parseDump(dump: string, names: Set<string>): Map<string, UnitReading> {
  const readings = new Map<string, UnitReading>();
  let current: UnitReading | undefined;
  let exec: string | undefined;
  for (const line of dump.split('\n')) {
    const unit = /^\t-> Unit (.+):$/.exec(line);
    if (unit) {
      current = names.has(unit[1]!) ? { exec: {}, listen: [] } : undefined;
      if (current) readings.set(unit[1]!, current);
      exec = undefined;
      continue;
    }
    if (!current) continue;
    const execKey = /^\t\t-> (Exec\w+):$/.exec(line);
    const command = /^\t\t\tCommand Line: (.*)$/s.exec(line); // s: a word may hold U+2028
    const listen = /^\t\t(Listen\w+): (.*)$/s.exec(line);
    if (execKey) exec = execKey[1]!;
    else if (command && exec) (current.exec[exec] ??= []).push(splitQuotedCommand(command[1]!));
    else if (listen) current.listen.push(cUnescape(listen[2]!));
    else if (/^\t\t\S/.test(line)) exec = undefined;
  }
  return readings;
}

const C_ESCAPES: Record<string, string> = {
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
}; // prettier-ignore

/**
 * systemd's quote_command_line (src/basic/escape.c): words joined by one space, a word with a
 * blank or a shell character double-quoted, with `\` `"` `$` and `` ` `` backslash-escaped and
 * control characters C-escaped; an empty word is `""`.
 */
function splitQuotedCommand(text: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < text.length) {
    let word = '';
    if (text[i] === '"') {
      for (i++; text[i] !== '"'; i++) {
        if (i >= text.length) throw new Error(`unterminated quote in dump: ${text}`);
        if (text[i] === '\\') {
          word += unescapeOne(text, i);
          i += escapeLength(text, i) - 1;
        } else {
          word += text[i];
        }
      }
      i++;
    } else {
      for (; i < text.length && text[i] !== ' '; i++) word += text[i];
    }
    words.push(word);
    if (text[i] === ' ') i++;
  }
  return words;
}

/** cescape's output (socket addresses): C escapes and octal bytes, decoded as UTF-8. */
function cUnescape(text: string): string {
  const bytes: Buffer[] = [];
  for (let i = 0; i < text.length; i++) {
    const octal = text[i] === '\\' ? /^[0-7]{3}/.exec(text.slice(i + 1)) : null;
    if (octal) {
      bytes.push(Buffer.from([parseInt(octal[0], 8)]));
      i += 3;
    } else if (text[i] === '\\') {
      bytes.push(Buffer.from(unescapeOne(text, i)));
      i++;
    } else {
      const char = String.fromCodePoint(text.codePointAt(i)!);
      bytes.push(Buffer.from(char));
      i += char.length - 1;
    }
  }
  return Buffer.concat(bytes).toString('utf8');
}

function unescapeOne(text: string, i: number): string {
  const next = text[i + 1]!;
  const octal = /^[0-7]{3}/.exec(text.slice(i + 1));
  if (octal) return String.fromCharCode(parseInt(octal[0], 8));
  return C_ESCAPES[next] ?? next;
}

function escapeLength(text: string, i: number): number {
  return /^[0-7]{3}/.test(text.slice(i + 1)) ? 4 : 2;
}
