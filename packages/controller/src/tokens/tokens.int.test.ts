import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken } from '../auth/tokens.js';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';

describe('API tokens', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
  });
  afterAll(async () => {
    await api?.close();
  });

  const asToken = (token: string, url: string) =>
    api.app.inject({ url, headers: { authorization: `Bearer ${token}` } });

  it('issues a token once, stores only its hash, and the token works at its role', async () => {
    const response = await api.call('admin', 'POST', '/v1/tokens', {
      name: 'ci',
      role: 'operator',
    });
    expect(response.statusCode).toBe(201);
    const { token, id } = response.json();
    expect(token).toMatch(/^pft_[A-Za-z0-9_-]{32}$/);
    const row = await api.prisma.apiToken.findUniqueOrThrow({ where: { id } });
    expect(row.tokenHash).toBe(hashToken(token));
    expect(JSON.stringify(row)).not.toContain(token);

    expect((await asToken(token, '/v1/groups')).statusCode).toBe(200);
    expect((await asToken(token, '/v1/tokens')).statusCode).toBe(403);

    const listed = await api.call('admin', 'GET', '/v1/tokens');
    expect(listed.body).not.toContain(token);
    expect(listed.body).not.toContain(row.tokenHash);
    expect(
      listed
        .json()
        .items.map((t: { name: string }) => t.name)
        .sort(),
    ).toEqual(['ci', 'ci-admin', 'ci-operator', 'ci-viewer']);
  });

  it('audits the issue with the actor and never the token', async () => {
    const [entry] = await api.prisma.auditEntry.findMany({ where: { action: 'token.create' } });
    expect(entry).toMatchObject({ actor: 'ci-admin', details: { name: 'ci', role: 'operator' } });
    expect(JSON.stringify(entry?.details)).not.toMatch(/pft_|[0-9a-f]{64}/);
  });

  it('answers 409 for the name of a live token, and 400 naming a bad role', async () => {
    const duplicate = await api.call('admin', 'POST', '/v1/tokens', { name: 'ci', role: 'viewer' });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json().message).toBe('token ci exists');
    const bad = await api.call('admin', 'POST', '/v1/tokens', { name: 'x', role: 'root' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toBe(
      'body.role: Invalid option: expected one of "viewer"|"operator"|"admin"',
    );
  });

  it('refuses a revoked token at once with 401', async () => {
    const issued = (
      await api.call('admin', 'POST', '/v1/tokens', { name: 'short-lived', role: 'viewer' })
    ).json();
    expect((await asToken(issued.token, '/v1/devices')).statusCode).toBe(200);
    expect((await api.call('admin', 'DELETE', `/v1/tokens/${issued.id}`)).statusCode).toBe(204);
    const refused = await asToken(issued.token, '/v1/devices');
    expect(refused.statusCode).toBe(401);
    expect(refused.json().message).toBe('unknown or revoked token');
    const again = await api.call('admin', 'DELETE', `/v1/tokens/${issued.id}`);
    expect(again.statusCode).toBe(409);
    // The name is free again once its token is revoked.
    const reissued = await api.call('admin', 'POST', '/v1/tokens', {
      name: 'short-lived',
      role: 'viewer',
    });
    expect(reissued.statusCode).toBe(201);
    const listed = await api.call('admin', 'GET', '/v1/tokens?revoked=true');
    expect(
      listed.json().items.filter((t: { name: string }) => t.name === 'short-lived'),
    ).toMatchObject([{ revokedAt: expect.any(String) }, { revokedAt: null }]);
  });

  it('will not revoke the last admin token', async () => {
    const admin = await api.prisma.apiToken.findFirstOrThrow({ where: { name: 'ci-admin' } });
    const response = await api.call('admin', 'DELETE', `/v1/tokens/${admin.id}`);
    expect(response.statusCode).toBe(409);
    expect(response.json().message).toBe(
      'token ci-admin is the last admin token; issue another first',
    );
    expect(
      (await api.call('admin', 'DELETE', '/v1/tokens/00000000-0000-4000-8000-000000000000'))
        .statusCode,
    ).toBe(404);
    expect(api.fleet.take()).toEqual([]);
  });
});
