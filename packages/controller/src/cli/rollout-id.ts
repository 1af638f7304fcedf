import type { ApiClient } from './api-client.js';
import { CliError, EXIT } from './io.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The start of a rollout id as `rollout ls` prints it: hex digits and its dashes. */
const PREFIX = /^[0-9a-f][0-9a-f-]*$/;
/** Fewer hex digits than this would match too often to be meant (git asks for 4 as well). */
export const MIN_PREFIX_DIGITS = 4;

interface RolloutRow {
  id: string;
  service: string;
  state: string;
  createdAt: string;
}

/**
 * The rollout an operator names: a whole id, a unique prefix of one (4 hex digits or more), or
 * `latest` (the newest rollout, of `service` when given). An unknown id exits 1; a prefix that
 * begins several ids, or text that is none of these, exits 2.
 */
export async function resolveRolloutId(
  api: ApiClient,
  given: string,
  service?: string,
): Promise<string> {
  const text = given.trim().toLowerCase();
  if (service !== undefined && text !== 'latest') {
    throw new CliError(['--service: only with latest (an id names one rollout already)']);
  }
  if (text === 'latest') return newest(api, service);
  if (UUID.test(text)) return text;
  if (!PREFIX.test(text) || text.replaceAll('-', '').length < MIN_PREFIX_DIGITS) {
    throw new CliError([
      `ID: not a rollout id, its first ${MIN_PREFIX_DIGITS}+ hex digits, or latest: ${JSON.stringify(given)}`,
    ]);
  }
  // Rollouts are few next to devices: their ids are listed and matched here, over the list route.
  const matches = (await api.all<RolloutRow>('/v1/rollouts')).filter((r) => r.id.startsWith(text));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0) throw new CliError([`404 rollout ${given} not found`], EXIT.failed);
  throw new CliError([
    `ID: ${given} begins ${matches.length} rollouts; give more of it:`,
    ...matches.map((r) => `  ${r.id}  ${r.service}  ${r.state}  ${r.createdAt}`),
  ]);
}

async function newest(api: ApiClient, service: string | undefined): Promise<string> {
  const page = await api.request<{ items: RolloutRow[] }>('GET', '/v1/rollouts', undefined, {
    service,
    limit: 1,
  });
  const latest = page.items[0];
  if (!latest) {
    throw new CliError([`404 no rollout${service ? ` of ${service}` : ''} yet`], EXIT.failed);
  }
  return latest.id;
}
