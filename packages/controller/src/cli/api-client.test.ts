import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError, DEFAULT_URL, resolveConnection } from './api-client.js';
import { CliError, EXIT } from './io.js';

describe('resolveConnection', () => {
  let data: string;

  beforeAll(async () => {
    data = await mkdtemp(join(tmpdir(), 'podfleet-cli-'));
    await writeFile(join(data, 'admin-token'), 'pft_from_file\n');
  });
  afterAll(async () => {
    await rm(data, { recursive: true, force: true });
  });

  it('takes flags over the environment over the admin-token file', async () => {
    const env = {
      PODFLEET_URL: 'http://ctl:9000/',
      PODFLEET_TOKEN: 'pft_env',
      PODFLEET_DATA: data,
    };
    expect(await resolveConnection({ url: 'https://x.example', token: 'pft_flag' }, env)).toEqual({
      url: 'https://x.example',
      token: 'pft_flag',
    });
    expect(await resolveConnection({}, env)).toEqual({ url: 'http://ctl:9000', token: 'pft_env' });
    expect(await resolveConnection({}, { PODFLEET_DATA: data })).toEqual({
      url: DEFAULT_URL,
      token: 'pft_from_file',
    });
  });

  it('says where it looked when there is no token, and refuses a URL that is not http', async () => {
    await expect(resolveConnection({}, { PODFLEET_DATA: join(data, 'none') })).rejects.toThrow(
      `no API token: pass --token, set PODFLEET_TOKEN, or make ${join(data, 'none', 'admin-token')} readable`,
    );
    await expect(resolveConnection({ url: 'ftp://x', token: 't' }, {})).rejects.toThrow(
      '--url: not an http(s) URL: ftp://x',
    );
  });
});

describe('ApiClient', () => {
  const connection = { url: 'http://ctl', token: 'pft_t' };
  const answering = (status: number, body: string) =>
    (async () => new Response(body, { status, statusText: 'Bad Gateway' })) as typeof fetch;

  it('turns a refusal into one line per problem: 400 is bad input (exit 2), others exit 1', async () => {
    const conflict = new ApiClient(
      connection,
      answering(409, JSON.stringify({ error: 'Conflict', message: 'group edge exists' })),
    );
    const error = await conflict.groups().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ lines: ['409 group edge exists'], exitCode: EXIT.failed });

    const invalid = new ApiClient(
      connection,
      answering(
        400,
        JSON.stringify({
          message: 'body.selector: expected key at 1',
          issues: ['body.selector: expected key at 1', 'body.members[0]: bad'],
        }),
      ),
    );
    const bad = (await invalid.groups().catch((caught: unknown) => caught)) as ApiError;
    expect(bad).toMatchObject({ exitCode: EXIT.badInput });
    expect(
      bad.naming({ 'body.selector': '--selector', 'body.members': '--members' }).lines,
    ).toEqual(['400 --selector: expected key at 1', '400 --members[0]: bad']);
  });

  it('reports a response that is not JSON by its status, and an unreachable controller', async () => {
    const proxy = new ApiClient(connection, answering(502, '<html>'));
    await expect(proxy.groups()).rejects.toMatchObject({ lines: ['502 Bad Gateway'] });
    const down = new ApiClient(connection, (async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
    }) as typeof fetch);
    const error = await down.groups().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CliError);
    expect(error).toMatchObject({
      lines: ['cannot reach the controller at http://ctl: ECONNREFUSED'],
      exitCode: EXIT.failed,
    });
  });

  it('sends the bearer token and follows cursors to the last page', async () => {
    const seen: string[] = [];
    const pages = new ApiClient(connection, (async (url: URL, init?: RequestInit) => {
      seen.push(`${url.pathname}${url.search} ${new Headers(init?.headers).get('authorization')}`);
      const cursor = url.searchParams.get('cursor');
      return Response.json(
        cursor
          ? { items: [{ id: 'b' }], nextCursor: null }
          : { items: [{ id: 'a' }], nextCursor: 'c1' },
      );
    }) as typeof fetch);
    expect((await pages.devices({ group: 'edge' })).map((d) => d.id)).toEqual(['a', 'b']);
    expect(seen).toEqual([
      '/v1/devices?group=edge&limit=500 Bearer pft_t',
      '/v1/devices?group=edge&limit=500&cursor=c1 Bearer pft_t',
    ]);
  });
});
