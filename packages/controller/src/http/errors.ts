import type { FastifyError, FastifyInstance } from 'fastify';
import { printable } from '@podfleet/shared';
import { RequestValidationError } from './validation.js';

/** Issues shown per answer; a body with thousands of bad items gets a count of the rest. */
const MAX_ISSUES = 20;
/** Characters of one message or issue line: they may echo what the client sent. */
const MAX_LINE = 500;

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

/** Lines as a client may see them: echoed input with control characters escaped, bounded. */
function shown(lines: readonly string[]): string[] {
  const out = lines.slice(0, MAX_ISSUES).map((line) => printable(line, MAX_LINE));
  if (lines.length > MAX_ISSUES) out.push(`… and ${lines.length - MAX_ISSUES} more problems`);
  return out;
}

/**
 * Every error leaves as `{ error, message, issues? }`: validation failures as 400 with one line per
 * problem naming the field (`body.env.GREETING: newline not allowed`), never a stack trace. Lines
 * may echo what the client sent, so each is shown through `printable` (no raw control characters,
 * no 10 MB echo).
 */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | RequestValidationError, request, reply) => {
    if (error instanceof RequestValidationError) {
      const part = error.validationContext ?? 'request';
      const issues = shown(
        error.issues.map((issue) =>
          issue.startsWith('(root)')
            ? `${part}${issue.slice(6)}`
            : issue.startsWith('[')
              ? `${part}${issue}`
              : `${part}.${issue}`,
        ),
      );
      return reply.code(400).send({ error: 'Bad Request', message: issues[0], issues });
    }
    if (error instanceof HttpError) {
      const body: Record<string, unknown> = {
        error: statusText(error.statusCode),
        message: printable(error.message, MAX_LINE),
      };
      if (error.issues) body.issues = shown(error.issues);
      return reply.code(error.statusCode).send(body);
    }
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 500
        ? error.statusCode
        : 500;
    if (status === 500) request.log.error({ err: error }, 'request failed');
    return reply.code(status).send({
      error: statusText(status),
      message: status === 500 ? 'internal error' : printable(error.message, MAX_LINE),
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
    413: 'Payload Too Large',
    415: 'Unsupported Media Type',
    422: 'Unprocessable Entity',
    429: 'Too Many Requests',
    502: 'Bad Gateway',
    504: 'Gateway Timeout',
  };
  return texts[status] ?? (status >= 500 ? 'Internal Server Error' : 'Error');
}
