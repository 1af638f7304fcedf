import type { FastifySchemaCompiler } from 'fastify';
import type { ZodType } from 'zod';
import { formatIssues } from '@podfleet/shared';

/** A request part that failed its zod schema; issues are `field.path: reason` lines. */
export class RequestValidationError extends Error {
  /** Set by Fastify: body, querystring, params or headers. */
  validationContext?: string;
  readonly statusCode = 400;

  constructor(readonly issues: string[]) {
    super(issues[0] ?? 'invalid request');
  }
}

/**
 * Fastify validator from the shared zod schemas. Unlike the type provider's own compiler it keeps
 * zod's path, so that a client reads `body.env.GREETING: newline not allowed`.
 */
export const zodValidatorCompiler: FastifySchemaCompiler<ZodType> =
  ({ schema }) =>
  (data) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    return { error: new RequestValidationError(formatIssues(result.error)) };
  };
