import { formatIssues } from '@podfleet/shared';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  formatSelector,
  matchesSelector,
  parseSelector,
  SelectorText,
  type Selector,
} from './selector.js';

function parsed(text: string): Selector {
  const result = parseSelector(text);
  if (!result.ok) throw new Error(result.error);
  return result.selector;
}

const matches = (text: string, labels: Record<string, string>) =>
  matchesSelector(parsed(text), labels);

describe('parseSelector', () => {
  it('reads every operator into its requirement', () => {
    expect(parsed('site=berlin').requirements).toEqual([
      { key: 'site', operator: 'in', values: ['berlin'] },
    ]);
    expect(parsed('site==berlin')).toEqual(parsed('site=berlin'));
    expect(parsed('site!=berlin').requirements).toEqual([
      { key: 'site', operator: 'notin', values: ['berlin'] },
    ]);
    expect(parsed('tier in (edge,gw)').requirements).toEqual([
      { key: 'tier', operator: 'in', values: ['edge', 'gw'] },
    ]);
    expect(parsed('tier notin (edge,gw)').requirements).toEqual([
      { key: 'tier', operator: 'notin', values: ['edge', 'gw'] },
    ]);
    expect(parsed('!canary').requirements).toEqual([{ key: 'canary', operator: 'absent' }]);
    expect(parsed('canary').requirements).toEqual([{ key: 'canary', operator: 'exists' }]);
    expect(parsed('role=').requirements).toEqual([{ key: 'role', operator: 'in', values: [''] }]);
  });

  it('joins requirements with commas (AND) and tolerates whitespace', () => {
    const spaced = parsed('  site = berlin ,\ttier in ( edge , gw ) , ! canary,gpu ');
    expect(spaced).toEqual(parsed('site=berlin,tier in (edge,gw),!canary,gpu'));
    expect(spaced.requirements).toHaveLength(4);
    expect(parsed('tier in(edge)')).toEqual(parsed('tier=edge'));
  });

  it('takes Kubernetes keys with a DNS prefix and values with - _ .', () => {
    expect(parsed('example.com/rack-id=r_1.2').requirements).toEqual([
      { key: 'example.com/rack-id', operator: 'in', values: ['r_1.2'] },
    ]);
  });

  it('reads the empty text as the empty selector', () => {
    expect(parsed('')).toEqual({ requirements: [] });
    expect(parsed('   ')).toEqual({ requirements: [] });
  });

  // prettier-ignore
  it.each([
    ['site=berlin,tier in (edge,gw', "selector: expected ',' or ')' at 29"],
    ['tier in edge', "selector: expected '(' at 9"],
    ['tier in ()', 'selector: expected value at 10'],
    ['tier in (a,)', 'selector: expected value at 12'],
    ['tier in (a b)', "selector: expected ',' or ')' at 12"],
    ['site=berlin,', 'selector: expected key at 13'],
    [',site', 'selector: expected key at 1'],
    ['site berlin', "selector: expected '=', '!=', 'in', 'notin', ',' or end at 6"],
    ['site=berlin x', "selector: expected ',' or end at 13"],
    ['!site=berlin', "selector: expected ',' or end at 6"],
    ['site=(x)', 'selector: expected value at 6'],
    ['site=ber%lin', 'selector: unexpected character "%" at 9'],
    ['site>3', 'selector: unexpected character ">" at 5'],
    ['Site_=x', 'selector: invalid key "Site_" at 1: name must be alphanumeric at both ends, with -, _ or . inside'],
    ['Example.com/x=y', 'selector: invalid key "Example.com/x" at 1: prefix must be a lower-case DNS subdomain'],
    ['/x', 'selector: invalid key "/x" at 1: prefix before / must not be empty'],
    [`k=${'v'.repeat(64)}`, `selector: invalid value "${'v'.repeat(64)}" at 3: value must be at most 63 characters`],
    ['k in (a,b/c)', 'selector: invalid value "b/c" at 9: value must be alphanumeric at both ends, with -, _ or . inside'],
  ])('rejects %j with one line and the position', (text, error) => {
    const result = parseSelector(text);
    expect(result).toMatchObject({ ok: false, error });
  });

  it('gives the zod schema the same reason, under the field name', () => {
    const Group = z.object({ selector: SelectorText });
    const result = Group.safeParse({ selector: 'tier in (edge' });
    expect(result.success).toBe(false);
    expect(formatIssues(result.error!)).toEqual(["selector: expected ',' or ')' at 14"]);
    expect(Group.safeParse({ selector: 'tier in (edge)' }).success).toBe(true);
  });
});

describe('formatSelector', () => {
  it.each([
    ['tier in (gw,edge,gw), site = berlin', 'site=berlin,tier in (edge,gw)'],
    ['b,a', 'a,b'],
    ['!canary,canary', 'canary,!canary'],
    ['k notin (b,a),k!=c,k in (x),!k,k', 'k,!k,k=x,k notin (a,b),k!=c'],
    ['a==1,a=1,a in (1)', 'a=1'],
    ['role=', 'role='],
    ['', ''],
  ])('prints %j as %j', (text, canonical) => {
    expect(formatSelector(parsed(text))).toBe(canonical);
  });

  it('round-trips: the canonical text parses back to the same selector', () => {
    for (const text of [
      'site=berlin,tier in (edge,gw),!canary',
      'x.example/k notin (z,y),k,m!=n,role=',
      '  z , y=1 , x in (3,2,1) ',
    ]) {
      const selector = parsed(text);
      const canonical = formatSelector(selector);
      expect(parsed(canonical)).toEqual(selector);
      expect(formatSelector(parsed(canonical))).toBe(canonical);
    }
  });

  it('prints a hand-built selector canonically too', () => {
    const selector: Selector = {
      requirements: [
        { key: 'tier', operator: 'in', values: ['gw', 'edge', 'gw'] },
        { key: 'site', operator: 'exists' },
      ],
    };
    expect(formatSelector(selector)).toBe('site,tier in (edge,gw)');
  });
});

describe('matchesSelector', () => {
  const berlinEdge = { site: 'berlin', tier: 'edge' };

  it('k=v needs the key with that value', () => {
    expect(matches('site=berlin', berlinEdge)).toBe(true);
    expect(matches('site=paris', berlinEdge)).toBe(false);
    expect(matches('region=eu', berlinEdge)).toBe(false);
  });

  it('k!=v matches another value or no key at all (as Kubernetes)', () => {
    expect(matches('site!=paris', berlinEdge)).toBe(true);
    expect(matches('site!=berlin', berlinEdge)).toBe(false);
    expect(matches('region!=eu', berlinEdge)).toBe(true);
  });

  it('k in (…) needs one of the values; k notin (…) none of them, or no key', () => {
    expect(matches('tier in (edge,gw)', berlinEdge)).toBe(true);
    expect(matches('tier in (gw,core)', berlinEdge)).toBe(false);
    expect(matches('region in (eu)', berlinEdge)).toBe(false);
    expect(matches('tier notin (gw,core)', berlinEdge)).toBe(true);
    expect(matches('tier notin (edge,gw)', berlinEdge)).toBe(false);
    expect(matches('region notin (eu)', berlinEdge)).toBe(true);
  });

  it('k needs the key, !k its absence, whatever the value', () => {
    expect(matches('site', berlinEdge)).toBe(true);
    expect(matches('canary', berlinEdge)).toBe(false);
    expect(matches('canary', { canary: '' })).toBe(true);
    expect(matches('!canary', berlinEdge)).toBe(true);
    expect(matches('!canary', { canary: '' })).toBe(false);
    expect(matches('canary=', { canary: '' })).toBe(true);
  });

  it('needs every requirement (AND)', () => {
    expect(matches('site=berlin,tier in (edge,gw),!canary', berlinEdge)).toBe(true);
    expect(matches('site=berlin,tier in (edge,gw),!canary', { ...berlinEdge, canary: 'yes' })).toBe(
      false,
    );
    expect(matches('site=berlin,tier=gw', berlinEdge)).toBe(false);
  });

  it('the empty selector matches nothing', () => {
    expect(matches('', berlinEdge)).toBe(false);
    expect(matches('', {})).toBe(false);
  });

  it('does not find inherited properties as labels', () => {
    expect(matches('constructor', {})).toBe(false);
    expect(matches('!toString', {})).toBe(true);
  });
});
