import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { z } from 'zod';
import type { ServiceSpec } from '@podfleet/shared';
import { ADMIN_TOKEN_FILE, DEFAULT_DATA_DIR } from '../serve/data-dir.js';
import type { Role } from '../auth/roles.js';
import type { DeviceView } from '../devices/schemas.js';
import type { AuditEntryView } from '../audit/routes.js';
import type { EventView } from '../events/list.js';
import type { QuarantineView } from '../ingest/quarantine-routes.js';
import type { AssignmentView, GroupView } from '../groups/schemas.js';
import type { PinView } from '../pins/schemas.js';
import type { AppliedRevision, ServiceSummary } from '../services/schemas.js';
import type { IssuedToken, TokenView } from '../tokens/schemas.js';
import { CliError, EXIT } from './io.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** A response body as JSON carries it: dates are ISO strings. */
export type Json<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

export interface ConnectionFlags {
  url?: string;
  token?: string;
}

export interface Connection {
  url: string;
  token: string;
}

/** Adds --url and --token to a command that talks to the controller. */
export function withConnection(command: Command): Command {
  return command
    .option('--url <url>', `controller URL (env PODFLEET_URL; default ${DEFAULT_URL})`)
    .option(
      '--token <token>',
      'API token (env PODFLEET_TOKEN; else the file $PODFLEET_DATA/admin-token or .podfleet/admin-token)',
    );
}

/**
 * Where the controller is and who is asking: flags, then PODFLEET_URL / PODFLEET_TOKEN, then the
 * bootstrap token that `podfleet serve` wrote under PODFLEET_DATA (so that on the controller's
 * own machine commands work with no setup).
 */
export async function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Connection> {
  const url = (flags.url ?? env.PODFLEET_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(url) || !URL.canParse(url)) {
    throw new CliError([`--url: not an http(s) URL: ${url}`]);
  }
  const given = flags.token ?? env.PODFLEET_TOKEN;
  if (given?.trim()) return { url, token: given.trim() };
  const file = join(env.PODFLEET_DATA?.trim() || DEFAULT_DATA_DIR, ADMIN_TOKEN_FILE);
  const stored = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    () => '',
  );
  if (stored) return { url, token: stored };
  throw new CliError([`no API token: pass --token, set PODFLEET_TOKEN, or make ${file} readable`]);
}

/** A refusal from the controller: `409 group edge exists`, one line per problem. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly issues: string[] = [],
  ) {
    const lines = (issues.length ? issues : [reason]).map((line) => `${status} ${line}`);
    super(lines, status === 400 ? EXIT.badInput : EXIT.failed);
  }

  /** The same error with request fields named as the user gave them (`body.selector` → `--selector`). */
  naming(fields: Readonly<Record<string, string>>): ApiError {
    const rename = (line: string) => {
      for (const [field, name] of Object.entries(fields)) {
        if (line === field || line.startsWith(`${field}:`) || line.startsWith(`${field}[`)) {
          return `${name}${line.slice(field.length)}`;
        }
      }
      return line;
    };
    return new ApiError(this.status, rename(this.reason), this.issues.map(rename));
  }
}

type Query = Record<string, string | number | boolean | undefined>;
type Page<T> = { items: Json<T>[]; nextCursor: string | null };

/** The operator API over fetch, typed by the routes' own schemas. */
export class ApiClient {
  constructor(
    private readonly connection: Connection,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, query: Query = {}): Promise<T> {
    const url = new URL(`${this.connection.url}${path}`);
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method,
        headers: {
          authorization: `Bearer ${this.connection.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CliError(
        [`cannot reach the controller at ${this.connection.url}: ${reason}`],
        EXIT.failed,
      );
    }
    const text = await response.text();
    const json = parseJson(text);
    if (!response.ok) {
      const refusal = json as { message?: unknown; issues?: unknown } | undefined;
      const message =
        typeof refusal?.message === 'string' ? refusal.message : response.statusText || 'error';
      const issues = Array.isArray(refusal?.issues) ? refusal.issues.map(String) : [];
      throw new ApiError(response.status, message, issues);
    }
    return json as T;
  }

  /** The server-sent events of `path`, as they come, until the server ends the stream. */
  async *stream(path: string): AsyncGenerator<{ event: string; data: string }> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.connection.url}${path}`, {
        headers: { authorization: `Bearer ${this.connection.token}`, accept: 'text/event-stream' },
      });
    } catch (error) {
      throw new CliError(
        [`cannot reach the controller at ${this.connection.url}: ${(error as Error).message}`],
        EXIT.failed,
      );
    }
    if (!response.ok || !response.body) {
      const refusal = parseJson(await response.text()) as { message?: string } | undefined;
      throw new ApiError(response.status, refusal?.message ?? response.statusText);
    }
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) yield { event, data: data.join('\n') };
      }
    }
  }

  /** Every item of a list endpoint, following nextCursor. */
  async all<T>(path: string, query: Query = {}): Promise<Json<T>[]> {
    const items: Json<T>[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.request<Page<T>>('GET', path, undefined, {
        ...query,
        limit: 500,
        cursor,
      });
      items.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return items;
  }

  devices(filter: {
    selector?: string;
    group?: string;
    online?: boolean;
    compliance?: string | undefined;
  }) {
    return this.all<DeviceView>('/v1/devices', filter);
  }

  createGroup(body: { name: string; selector?: string; priority?: number; members?: string[] }) {
    return this.request<Json<GroupView>>('POST', '/v1/groups', body);
  }

  groups() {
    return this.all<GroupView>('/v1/groups');
  }

  /** `force` stores it even over an image a rollout put in place (409 otherwise). */
  applyService(spec: ServiceSpec, force = false) {
    const body = force ? { spec, force } : { spec };
    return this.request<Json<z.input<typeof AppliedRevision>>>('POST', '/v1/services', body);
  }

  services() {
    return this.all<ServiceSummary>('/v1/services');
  }

  setPin(body: { group?: string; device?: string; service: string; image: string }) {
    return this.request<Json<PinView>>('PUT', '/v1/pins', body);
  }

  pins(filter: { group?: string; device?: string; service?: string }) {
    return this.all<PinView>('/v1/pins', filter);
  }

  deletePin(id: string) {
    return this.request<undefined>('DELETE', `/v1/pins/${encodeURIComponent(id)}`);
  }

  assign(group: string, service: string, revision?: number) {
    const path = `/v1/groups/${encodeURIComponent(group)}/services/${encodeURIComponent(service)}`;
    return this.request<Json<AssignmentView>>(
      'PUT',
      path,
      revision === undefined ? {} : { revision },
    );
  }

  unassign(group: string, service: string) {
    const path = `/v1/groups/${encodeURIComponent(group)}/services/${encodeURIComponent(service)}`;
    return this.request<undefined>('DELETE', path);
  }

  createToken(name: string, role: Role) {
    return this.request<Json<z.input<typeof IssuedToken>>>('POST', '/v1/tokens', { name, role });
  }

  tokens() {
    return this.all<TokenView>('/v1/tokens');
  }

  revokeToken(id: string) {
    return this.request<undefined>('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  /** The newest `limit` events matching the filter, newest first. */
  events(filter: { device?: string; type?: string; since?: string }, limit: number) {
    return this.newest<EventView>('/v1/events', filter, limit);
  }

  /** The newest `limit` audit entries matching the filter, newest first (admin token). */
  audit(
    filter: { actor?: string; action?: string; target?: string; since?: string },
    limit: number,
  ) {
    return this.newest<AuditEntryView>('/v1/audit', filter, limit);
  }

  /** The newest `limit` quarantined device messages, newest first. */
  quarantine(filter: { device?: string }, limit: number) {
    return this.newest<QuarantineView>('/v1/quarantine', filter, limit);
  }

  /** The first `limit` items of a paged list, following its cursors. */
  private async newest<T>(
    path: string,
    filter: Record<string, string | undefined>,
    limit: number,
  ): Promise<Json<T>[]> {
    const items: Json<T>[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.request<Page<T>>('GET', path, undefined, {
        ...filter,
        limit: Math.min(500, limit - items.length),
        cursor,
      });
      items.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && items.length < limit);
    return items;
  }
}

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The client for a command's --url/--token flags. */
export async function clientFor(flags: ConnectionFlags): Promise<ApiClient> {
  return new ApiClient(await resolveConnection(flags));
}

/** For `.catch`: rethrows an ApiError with request fields named as the user gave them. */
export function naming(fields: Readonly<Record<string, string>>) {
  return (error: unknown): never => {
    throw error instanceof ApiError ? error.naming(fields) : error;
  };
}
