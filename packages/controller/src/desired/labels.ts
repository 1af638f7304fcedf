import { z } from 'zod';

// Kubernetes label syntax (k8s.io/apimachinery IsQualifiedName / IsValidLabelValue): a name of at
// most 63 characters, alphanumeric at both ends with '-', '_' or '.' inside, optionally behind a
// DNS-subdomain prefix and '/'. Values are empty or a name.
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const NAME_RULE = 'alphanumeric at both ends, with -, _ or . inside';

/** Why a label key is not one, or undefined when it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (slash !== -1) {
    const prefix = key.slice(0, slash);
    if (prefix.length === 0) return 'prefix before / must not be empty';
    if (prefix.length > 253) return 'prefix must be at most 253 characters';
    if (!DNS_SUBDOMAIN.test(prefix)) return 'prefix must be a lower-case DNS subdomain';
  }
  if (name.length === 0) return 'name must not be empty';
  if (name.length > 63) return 'name must be at most 63 characters';
  if (!NAME.test(name)) return `name must be ${NAME_RULE}`;
  return undefined;
}

/** Why a label value is not one, or undefined when it is (the empty value is one). */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return 'value must be at most 63 characters';
  if (value !== '' && !NAME.test(value)) return `value must be ${NAME_RULE}`;
  return undefined;
}

const refined = (problem: (text: string) => string | undefined) =>
  z.string().superRefine((text, ctx) => {
    const reason = problem(text);
    if (reason) ctx.addIssue({ code: 'custom', message: reason });
  });

export const LabelKey = refined(labelKeyProblem);
export const LabelValue = refined(labelValueProblem);

/** A device's labels, as selectors match them (`site: berlin`, `example.com/tier: edge`). */
export const Labels = z.record(LabelKey, LabelValue);
export type Labels = z.output<typeof Labels>;
