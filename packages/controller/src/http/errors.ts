import type { FastifyError, FastifyInstance } from 'fastify';
import { RequestValidationError } from './validation.js';

/** An error whose message the API client should see, with its HTTP status. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly issues?: string[],
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new HttpError(404, `${what} not found`);
export const conflict = (message: string) => new HttpError(409, message);
export const badRequest = (message: string, issues?: string[]) =>
  new HttpError(400, message, issues);

/**
 * Every error leaves as `{ error, message, issues? }`: validation failures as 400 with one line per
 * problem naming the field (`body.env.GREETING: newline not allowed`), never a stack trace.
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | RequestValidationError, request, reply) => {
    if (error instanceof RequestValidationError) {
      const part = error.validationContext ?? 'request';
      const issues = error.issues.map((issue) =>
        issue.startsWith('(root)')
          ? `${part}${issue.slice(6)}`
          : issue.startsWith('[')
            ? `${part}${issue}`
            : `${part}.${issue}`,
      );
      return reply.code(400).send({ error: 'Bad Request', message: issues[0], issues });
    }
    if (error instanceof HttpError) {
      const body: Record<string, unknown> = {
        error: statusText(error.statusCode),
        message: error.message,
      };
      if (error.issues) body.issues = error.issues;
      return reply.code(error.statusCode).send(body);
    }
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 500
        ? error.statusCode
        : 500;
    if (status === 500) request.log.error({ err: error }, 'request failed');
    return reply.code(status).send({
      error: statusText(status),
      message: status === 500 ? 'internal error' : error.message,
    });
  });
}

function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'Bad Request',
    401: 'Unauthorized',
    403: 'Forbidden',
    404: 'Not Found',
    409: 'Conflict',
    429: 'Too Many Requests',
    502: 'Bad Gateway',
    504: 'Gateway Timeout',
  };
  return texts[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error');
}
