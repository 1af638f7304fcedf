import { Prisma } from '../db/client.js';
import type { Requirement, Selector } from '../desired/index.js';

/**
 * A label selector as a SQL condition on `devices.labels` (jsonb), with the meaning
 * matchesSelector gives it: `k!=v` and `k notin (…)` also match a device without the key, and
 * the empty selector matches nothing. Keys and values are parameters, never spliced into the text.
 */
export function selectorCondition(selector: Selector, column = Prisma.raw('labels')): Prisma.Sql {
  if (selector.requirements.length === 0) return Prisma.sql`FALSE`;
  return Prisma.join(
    selector.requirements.map((requirement) => requirementCondition(requirement, column)),
    ' AND ',
    '(',
    ')',
  );
}

function requirementCondition(requirement: Requirement, column: Prisma.Sql): Prisma.Sql {
  // The cast picks jsonb ->> text (a key) over jsonb ->> int (an array index).
  const value = Prisma.sql`(${column} ->> ${requirement.key}::text)`;
  switch (requirement.operator) {
    case 'exists':
      return Prisma.sql`${value} IS NOT NULL`;
    case 'absent':
      return Prisma.sql`${value} IS NULL`;
    case 'in':
      return Prisma.sql`${value} IN (${Prisma.join(requirement.values.map(text))})`;
    case 'notin':
      return Prisma.sql`(${value} IS NULL OR ${value} NOT IN (${Prisma.join(requirement.values.map(text))}))`;
  }
}

const text = (value: string) => Prisma.sql`${value}::text`;
