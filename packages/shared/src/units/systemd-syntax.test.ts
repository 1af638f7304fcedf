import { describe, expect, it } from 'vitest';
import {
  UnitSyntaxError,
  escapeExecArg,
  parseUnitFile,
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
  ])('escapes %j as %s', (arg, escaped) => {
    expect(escapeExecArg(arg)).toBe(escaped);
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

  it('refuses an unterminated quote, as systemd does', () => {
    expect(() => splitExecLine("/bin/echo it's")).toThrow(UnitSyntaxError);
  });
});

describe('parseUnitFile', () => {
  it('joins continued lines and keeps sections and repeated keys in order', () => {
    const entries = parseUnitFile(
      '# comment\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/a \\\n\t-b \\\n\t-c\nEnvironment=A=1\nEnvironment=B=2\n',
    );
    expect(unitValues(entries, 'Service', 'ExecStart')).toEqual(['/bin/a  -b  -c']);
    expect(unitValues(entries, 'Service', 'Environment')).toEqual(['A=1', 'B=2']);
    expect(unitValues(entries, 'Unit', 'Description')).toEqual(['x']);
  });
});
