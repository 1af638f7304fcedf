import type { FastifyInstance } from 'fastify';
import type { RoutePlugin } from '../http/app.js';

/** One dependency the controller needs to do its work; `probe` rejects, saying why, when it is down. */
export interface ReadinessCheck {
  name: string;
  probe(): Promise<void>;
}

/** A probe that hangs counts as down after this long: a load balancer's own timeout is longer. */
const PROBE_TIMEOUT_MS = 2_000;

/**
 * GET /readyz: 200 when every check passes, 503 naming each one that is down. It is open, as
 * /healthz is, so it says only `ok` or `down`; why goes to the log (a database error can name
 * hosts and users). /healthz stays liveness: the process answers, whatever its dependencies do,
 * so a supervisor does not restart a controller that waits for its database.
 */
export function readinessPage(checks: readonly ReadinessCheck[]): RoutePlugin {
  return (app: FastifyInstance) => {
    app.get('/readyz', async (_request, reply) => {
      const results = await Promise.all(checks.map((check) => run(check, app)));
      const down = results.filter((result) => result !== 'ok');
      const status = Object.fromEntries(checks.map((check, i) => [check.name, results[i]]));
      return reply
        .code(down.length === 0 ? 200 : 503)
        .send({ ready: down.length === 0, checks: status });
    });
  };
}

async function run(check: ReadinessCheck, app: FastifyInstance): Promise<'ok' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([check.probe(), timeout]);
    return 'ok';
  } catch (error) {
    app.log.warn({ err: error, check: check.name }, 'not ready');
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}
