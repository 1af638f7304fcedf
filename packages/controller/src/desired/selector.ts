import { z } from 'zod';
import { labelKeyProblem, labelValueProblem } from './labels.js';

/**
 * One term of a label selector, as Kubernetes has them. `k=v` is `in` with one value and `k!=v` is
 * `notin` with one value: they mean the same, so they are the same here.
 */
export type Requirement =
  | { readonly key: string; readonly operator: 'exists' | 'absent' }
  | { readonly key: string; readonly operator: 'in' | 'notin'; readonly values: readonly string[] };

/** Requirements joined by AND, in canonical order (see formatSelector). */
export interface Selector {
  readonly requirements: readonly Requirement[];
}

export type SelectorParse =
  | { ok: true; selector: Selector }
  /**
   * `error` is the one line to show: `selector: expected ',' or ')' at 17` (1-based position);
   * `message` is the same without `selector: `, for use under another field name.
   */
  | { ok: false; error: string; message: string; position: number };

type TokenKind = 'word' | '(' | ')' | ',' | '=' | '!=' | '!' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
  /** 1-based character position in the selector text. */
  position: number;
}

/** `expected key at 13`, or with the reason a token is wrong: `invalid key "Site_" at 1: …`. */
class SelectorSyntaxError extends Error {
  constructor(
    what: string,
    readonly position: number,
    why?: string,
  ) {
    super(why === undefined ? `${what} at ${position}` : `${what} at ${position}: ${why}`);
  }
}

const WORD_CHAR = /[A-Za-z0-9._/-]/;
const SPACE = /\s/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const char = text[i]!;
    const position = i + 1;
    if (SPACE.test(char)) {
      i++;
    } else if (WORD_CHAR.test(char)) {
      let end = i + 1;
      while (end < text.length && WORD_CHAR.test(text[end]!)) end++;
      tokens.push({ kind: 'word', text: text.slice(i, end), position });
      i = end;
    } else if (char === '!' || char === '=') {
      // Kubernetes accepts both `=` and `==` for equality.
      const pair = text[i + 1] === '=';
      const kind = char === '!' ? (pair ? '!=' : '!') : '=';
      tokens.push({ kind, text: pair ? `${char}=` : char, position });
      i += pair ? 2 : 1;
    } else if (char === '(' || char === ')' || char === ',') {
      tokens.push({ kind: char, text: char, position });
      i++;
    } else {
      throw new SelectorSyntaxError(`unexpected character ${JSON.stringify(char)}`, position);
    }
  }
  tokens.push({ kind: 'end', text: '', position: text.length + 1 });
  return tokens;
}

function parseTokens(tokens: readonly Token[]): Requirement[] {
  let index = 0;
  const peek = () => tokens[index]!;
  const take = () => tokens[index++]!;
  const fail = (what: string, why?: string): never => {
    throw new SelectorSyntaxError(what, peek().position, why);
  };
  const word = (what: 'key' | 'value', problem: (text: string) => string | undefined) => {
    const token = peek();
    if (token.kind !== 'word') return fail(`expected ${what}`);
    const reason = problem(token.text);
    if (reason) fail(`invalid ${what} ${JSON.stringify(token.text)}`, reason);
    return take().text;
  };
  const key = () => word('key', labelKeyProblem);
  const value = () => word('value', labelValueProblem);

  const requirement = (): Requirement => {
    if (peek().kind === '!') {
      take();
      return { key: key(), operator: 'absent' };
    }
    const name = key();
    const next = peek();
    if (next.kind === ',' || next.kind === 'end') return { key: name, operator: 'exists' };
    if (next.kind === '=' || next.kind === '!=') {
      take();
      const operator = next.kind === '=' ? 'in' : 'notin';
      // `k=` selects the empty value, which Kubernetes labels may have.
      const after = peek().kind;
      const single = after === ',' || after === 'end' ? '' : value();
      return { key: name, operator, values: [single] };
    }
    if (next.kind === 'word' && (next.text === 'in' || next.text === 'notin')) {
      take();
      if (peek().kind !== '(') fail("expected '('");
      take();
      const values = [value()];
      while (peek().kind === ',') {
        take();
        values.push(value());
      }
      if (peek().kind !== ')') fail("expected ',' or ')'");
      take();
      return { key: name, operator: next.text, values };
    }
    return fail("expected '=', '!=', 'in', 'notin', ',' or end");
  };

  const requirements: Requirement[] = [];
  if (peek().kind === 'end') return requirements;
  for (;;) {
    requirements.push(requirement());
    if (peek().kind === 'end') return requirements;
    if (peek().kind !== ',') fail("expected ',' or end");
    take();
  }
}

/**
 * Parses a Kubernetes-style label selector: `site=berlin,tier in (edge,gw)`, `k!=v`,
 * `k notin (a,b)`, `!k` (key absent), `k` (key present); comma is AND. Never throws.
 */
export function parseSelector(text: string): SelectorParse {
  try {
    return { ok: true, selector: { requirements: canonical(parseTokens(tokenize(text))) } };
  } catch (error) {
    if (!(error instanceof SelectorSyntaxError)) throw error;
    const { message, position } = error;
    return { ok: false, error: `selector: ${message}`, message, position };
  }
}

/**
 * Whether labels satisfy every requirement. As in Kubernetes, `k!=v` and `k notin (…)` also match
 * a device without the key. Unlike Kubernetes, the empty selector matches nothing: a group with
 * no selector holds only the devices it lists, and a typo cannot put a service on every device.
 */
export function matchesSelector(selector: Selector, labels: Readonly<Record<string, string>>) {
  const { requirements } = selector;
  if (requirements.length === 0) return false;
  for (const requirement of requirements) {
    if (!matchesRequirement(requirement, labels)) return false;
  }
  return true;
}

function matchesRequirement(requirement: Requirement, labels: Readonly<Record<string, string>>) {
  // hasOwn: a key like `constructor` must not find Object.prototype's.
  const value = Object.hasOwn(labels, requirement.key) ? labels[requirement.key] : undefined;
  switch (requirement.operator) {
    case 'exists':
      return value !== undefined;
    case 'absent':
      return value === undefined;
    case 'in':
      return value !== undefined && requirement.values.includes(value);
    case 'notin':
      return value === undefined || !requirement.values.includes(value);
  }
}

/**
 * The canonical text of a selector: requirements sorted by key, then operator, then values; set
 * values sorted and deduplicated; one-value sets as `k=v` / `k!=v`; no spaces but the ones `in`
 * and `notin` need. Equal selectors print equal, and parseSelector reads it back unchanged.
 */
export function formatSelector(selector: Selector): string {
  return canonical(selector.requirements).map(formatRequirement).join(',');
}

const OPERATOR_ORDER = { exists: 0, absent: 1, in: 2, notin: 3 } as const;
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function formatRequirement(requirement: Requirement): string {
  const { key } = requirement;
  switch (requirement.operator) {
    case 'exists':
      return key;
    case 'absent':
      return `!${key}`;
    case 'in':
    case 'notin': {
      const { values, operator } = requirement;
      if (values.length === 1) return `${key}${operator === 'in' ? '=' : '!='}${values[0]}`;
      return `${key} ${operator} (${values.join(',')})`;
    }
  }
}

function canonical(requirements: readonly Requirement[]): Requirement[] {
  const sorted = requirements
    .map((requirement): Requirement => {
      const { key } = requirement;
      if (!('values' in requirement)) return { key, operator: requirement.operator };
      const values = [...new Set<string>(requirement.values)].sort(byText);
      return { key, operator: requirement.operator, values };
    })
    .map((requirement) => ({ requirement, text: formatRequirement(requirement) }))
    .sort(
      (a, b) =>
        byText(a.requirement.key, b.requirement.key) ||
        OPERATOR_ORDER[a.requirement.operator] - OPERATOR_ORDER[b.requirement.operator] ||
        byText(a.text, b.text),
    );
  return sorted
    .filter((entry, index) => index === 0 || entry.text !== sorted[index - 1]!.text)
    .map((entry) => entry.requirement);
}

/** A selector as an operator writes it (API, CLI): rejected with the reason and position. */
export const SelectorText = z
  .string()
  .max(4096)
  .superRefine((text, ctx) => {
    const parsed = parseSelector(text);
    if (!parsed.ok) {
      ctx.addIssue({ code: 'custom', message: parsed.message });
    }
  });
