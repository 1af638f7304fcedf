import { describe, expect, it } from 'vitest';
import {
  UnitSyntaxError,
  escapeExecArg,
  escapeSpecifiers,
  parseUnitFile,
  quoteExecArg,
  splitExecLine,
  unitValues,
} from './systemd-syntax.js';

describe('escapeExecArg', () => {
  it.each([
    ['plain', 'plain'],
    ['hello world', '"hello world"'],
    ['50%', '50%%'],
    ['$HOME', '$$HOME'],
    ['a\\b', 'a\\\\b'],
    ['say "hi"', '"say \\"hi\\""'],
    ["it's", '"it\'s"'],
    ['', '""'],
    [';', '";"'],
    // Podman's escaping (Go's strconv.Quote): a tab makes the word quoted and is written \t.
    ['a\tb', '"a\\tb"'],
    ['a\t "b" c\\', '"a\\t \\"b\\" c\\\\"'],
    ['nbsp\u00a0 tag\u{e0001}', '"nbsp\\u00a0 tag\\U000e0001"'],
  ])('escapes %j as %s', (arg, escaped) => {
    expect(escapeExecArg(arg)).toBe(escaped);
  });

  it('quotes on request, so that a line never ends in the argument itself', () => {
    expect(quoteExecArg('a\\')).toBe('"a\\\\"');
    expect(quoteExecArg('50% $X')).toBe('"50%% $$X"');
    expect(quoteExecArg('ends in a tab\t')).toBe('"ends in a tab\\t"');
  });

  it('round-trips every awkward argument through systemd splitting', () => {
    const args = [
      '/bin/sh',
      '-c',
      'echo "a b"; echo \'c\' \\ 100% $X ${Y} $$',
      '',
      ';',
      'grüße ✓',
      '%n',
      'ends in a backslash\\',
      'bare\\',
      'nbsp\u00a0',
      '\u0085nel',
      'a\tb',
      '\t',
      'a \u00a0\u2028\u{e0001}',
    ];
    expect(splitExecLine(args.map(escapeExecArg).join(' '))).toEqual(args);
  });
});

describe('splitExecLine', () => {
  it('resolves specifiers and environment references the way systemd marks them', () => {
    expect(
      splitExecLine('/usr/bin/podman run --cidfile=%t/%n.ctr-id -e A=$B ${C} $$D 5%%'),
    ).toEqual([
      '/usr/bin/podman',
      'run',
      '--cidfile={%t}/{%n}.ctr-id',
      '-e',
      'A={$B}',
      '{$C}',
      '$D',
      '5%',
    ]);
  });

  it('reads quotes in the middle of a word and C escapes', () => {
    expect(splitExecLine('a"b c"d \'e f\' "\\x41\\t\\u00e9" x\\\\y')).toEqual([
      'ab cd',
      'e f',
      'A\té',
      'x\\y',
    ]);
  });

  it('splits only on space, tab, CR and LF (systemd WHITESPACE), not on Unicode blanks', () => {
    expect(splitExecLine('a\u00a0b c\u0085\u2028 \u3000')).toEqual([
      'a\u00a0b',
      'c\u0085\u2028',
      '\u3000',
    ]);
  });

  it('refuses an unterminated quote, as systemd does', () => {
    expect(() => splitExecLine("/bin/echo it's")).toThrow(UnitSyntaxError);
  });
});

describe('escapeSpecifiers', () => {
  it('doubles % and ends a value that ends in a backslash with %i (empty, not a continuation)', () => {
    expect(escapeSpecifiers('/run/a%b.sock')).toBe('/run/a%%b.sock');
    expect(escapeSpecifiers('/run/a\\')).toBe('/run/a\\%i');
  });
});

describe('parseUnitFile', () => {
  it('joins continued lines as systemd does (backslash → space, next line as written) and keeps sections and repeated keys in order', () => {
    const entries = parseUnitFile(
      '# comment\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a \\\n\t-b \\\n\t-c\nEnvironment=A=1\nEnvironment=B=2\n',
    );
    expect(unitValues(entries, 'Service', 'ExecStart')).toEqual(['/bin/a  \t-b  \t-c']);
    expect(unitValues(entries, 'Service', 'Environment')).toEqual(['A=1', 'B=2']);
    expect(unitValues(entries, 'Unit', 'Description')).toEqual(['x']);
  });

  it('continues a line only after an odd number of backslashes, as systemd does', () => {
    const entries = parseUnitFile('[S]\nA=x\\\\\nB=y\\\\\\\nC=z\nD=w\\\n');
    expect(entries.map((e) => `${e.key}=${e.value}`)).toEqual(['A=x\\\\', 'B=y\\\\ C=z', 'D=w']);
  });

  it('skips comment lines inside a continuation, and ends it at a blank line (systemd)', () => {
    const entries = parseUnitFile('[S]\nA=1 \\\n# note\n  2 \\\n\nB=3\n');
    expect(entries.map((e) => `${e.key}=${e.value}`)).toEqual(['A=1    2', 'B=3']);
  });

  it('strips only space, tab, CR and LF from keys and values, as systemd does', () => {
    const entries = parseUnitFile('[S]\n A = \u00a0x\u0085 \t\n');
    expect(entries).toEqual([{ section: 'S', key: 'A', value: '\u00a0x\u0085' }]);
  });

  it('reads a .container as Quadlet does: any trailing backslash joins, without a space', () => {
    const text = '[Container]\nVolume=/a:/b\\\\\nVolume=/c:/d\nExec=/bin/a \\\n# note\n  -b\n';
    expect(unitValues(parseUnitFile(text, 'quadlet'), 'Container', 'Volume')).toEqual([
      '/a:/b\\Volume=/c:/d',
    ]);
    expect(unitValues(parseUnitFile(text, 'quadlet'), 'Container', 'Exec')).toEqual(['/bin/a -b']);
    // A blank line inside a continuation is skipped like a comment, where systemd ends it.
    const blank = parseUnitFile('[Container]\nExec=/bin/a \\\n\n-b\n', 'quadlet');
    expect(unitValues(blank, 'Container', 'Exec')).toEqual(['/bin/a -b']);
    expect(unitValues(parseUnitFile(text, 'systemd'), 'Container', 'Volume')).toEqual([
      '/a:/b\\\\',
      '/c:/d',
    ]);
  });

  it('trims Unicode blanks from the ends of every line for Quadlet (Go strings.TrimSpace)', () => {
    const text = '[Container]\nLabel=a=x\u00a0\nLabel=b=y\u0085\nLabel="c=z\u3000"\n';
    expect(unitValues(parseUnitFile(text, 'quadlet'), 'Container', 'Label')).toEqual([
      'a=x',
      'b=y',
      '"c=z\u3000"',
    ]);
    expect(unitValues(parseUnitFile(text, 'systemd'), 'Container', 'Label')).toEqual([
      'a=x\u00a0',
      'b=y\u0085',
      '"c=z\u3000"',
    ]);
  });
});
