import { z } from 'zod';
import { ROLES } from '../auth/roles.js';
import { PageQuery } from '../http/pages.js';

/** A token's name is the actor in the audit log, so it is plain and unique among live tokens. */
export const TokenName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, {
  message: 'must match [A-Za-z0-9][A-Za-z0-9._@-]{0,63}',
});

export const CreateToken = z.strictObject({ name: TokenName, role: z.enum(ROLES) });

export const TokenQuery = z.strictObject({
  /** Include revoked tokens. */
  revoked: z
    .enum(['true', 'false'])
    .transform((value) => value === 'true')
    .default(false),
  ...PageQuery,
});

export const TokenParams = z.strictObject({ id: z.uuid() });

export const TokenView = z.object({
  id: z.string(),
  name: z.string(),
  role: z.enum(ROLES),
  createdAt: z.date(),
  revokedAt: z.date().nullable(),
});
export type TokenView = z.input<typeof TokenView>;

export const IssuedToken = TokenView.extend({
  /** The bearer token itself: shown here once, stored only as its hash. */
  token: z.string(),
});
