import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dashboardAssetsDir } from './plugin.js';

/** The page's own ES modules, imported in Node as the browser runs them. */
async function browserModule<T>(name: string): Promise<T> {
  return (await import(pathToFileURL(join(dashboardAssetsDir, 'js', name)).href)) as T;
}

interface Client {
  get(path: string): Promise<unknown>;
  post(path: string): Promise<unknown>;
}
type Outcome = { status: { id: string; awaitingApproval: boolean } } | { error: string };

const { ApiClient, TokenRefused } = await browserModule<{
  ApiClient: new (token: string, fetchImpl: typeof fetch) => Client;
  TokenRefused: new (message: string) => Error;
}>('api.js');
const { approveBatch } = await browserModule<{
  approveBatch: (api: Client, id: string) => Promise<Outcome>;
}>('rollouts.js');

const ID = '6f1c2a3e-8a0b-4d6c-9e21-3b5f7d9a1c40';

/** A fetch that records each request and answers with `status` and `body` as JSON. */
function fakeFetch(status: number, body: unknown) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof fetch;
  return { calls, fetchImpl };
}

describe('approving a batch from the dashboard', () => {
  it('POSTs /v1/rollouts/:id/approve with the token, no body, and answers the new status', async () => {
    const approved = { id: ID, awaitingApproval: false, reason: 'batch 0 approved by ops' };
    const { calls, fetchImpl } = fakeFetch(200, approved);
    const outcome = await approveBatch(new ApiClient('pft_operator', fetchImpl), ID);
    expect(outcome).toEqual({ status: approved });
    expect(calls).toHaveLength(1);
    const [{ url, init }] = calls as [{ url: string; init: RequestInit }];
    expect(url).toBe(`/v1/rollouts/${ID}/approve`);
    expect(init.method).toBe('POST');
    expect(init.body).toBeUndefined();
    expect(init.headers).toEqual({
      authorization: 'Bearer pft_operator',
      accept: 'application/json',
    });
  });

  it('answers the controller’s message when it refuses: a viewer token, no approval pending', async () => {
    const viewer = fakeFetch(403, {
      error: 'Forbidden',
      message: 'needs role operator; token wall-screen has viewer',
    });
    expect(await approveBatch(new ApiClient('pft_viewer', viewer.fetchImpl), ID)).toEqual({
      error: 'Cannot approve: needs role operator; token wall-screen has viewer',
    });
    const early = fakeFetch(409, {
      error: 'Conflict',
      message: 'rollout is not waiting for an approval (batch 2 is current)',
    });
    expect(await approveBatch(new ApiClient('pft_operator', early.fetchImpl), ID)).toEqual({
      error: 'Cannot approve: rollout is not waiting for an approval (batch 2 is current)',
    });
  });

  it('answers why when the controller cannot be reached', async () => {
    const offline = (async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    expect(await approveBatch(new ApiClient('pft_operator', offline), ID)).toEqual({
      error: 'Cannot approve: Failed to fetch',
    });
  });

  it('lets a refused token through, so the page asks for another one', async () => {
    const { fetchImpl } = fakeFetch(401, { error: 'Unauthorized', message: 'unknown token' });
    await expect(approveBatch(new ApiClient('pft_gone', fetchImpl), ID)).rejects.toBeInstanceOf(
      TokenRefused,
    );
  });

  it('reads with GET as before', async () => {
    const { calls, fetchImpl } = fakeFetch(200, { items: [] });
    expect(await new ApiClient('pft_viewer', fetchImpl).get('/v1/devices')).toEqual({ items: [] });
    expect(calls[0]!.init.method).toBe('GET');
  });
});
