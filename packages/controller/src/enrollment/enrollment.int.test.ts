import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiHarness, type ApiHarness } from '../http/route-testing.js';
import type { CredentialIssuer } from './credentials.js';

const broker: CredentialIssuer = {
  name: 'broker',
  async issue(device) {
    if (device.labels.refuse === 'yes') throw new Error('broker refused');
    return { username: device.id };
  },
};

describe('enrollment', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness({
      enroll: { issuers: [broker], rateLimit: { limit: 1000, windowMs: 60_000 } },
    });
    await api.call('operator', 'POST', '/v1/groups', { name: 'edge' });
    api.fleet.take();
  });
  afterAll(async () => {
    await api?.close();
  });

  const issue = async (body: object = { ttl: '1h' }) => {
    const response = await api.call('admin', 'POST', '/v1/enrollment-tokens', body);
    expect(response.statusCode).toBe(201);
    return response.json() as { id: string; token: string };
  };
  const enroll = (body: object) =>
    api.app.inject({ method: 'POST', url: '/v1/enroll', payload: body });

  it('enrolls a device once with a token: its labels win, it joins the group', async () => {
    const { id, token } = await issue({ ttl: '1h', labels: { site: 'berlin' }, group: 'edge' });
    expect(token).toMatch(/^pfe_/);
    const response = await enroll({
      token,
      device: 'pi-1',
      labels: { site: 'paris', arch: 'arm64' },
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      device: { id: 'pi-1', labels: { site: 'berlin', arch: 'arm64' } },
      credentials: { broker: { username: 'pi-1' } },
    });
    expect(await api.prisma.groupMember.count({ where: { groupName: 'edge' } })).toBe(1);
    expect(api.fleet.take()).toEqual(['device/pi-1: enrolled']);
    const [audit] = await api.prisma.auditEntry.findMany({ where: { action: 'device.enroll' } });
    expect(audit).toMatchObject({ actor: `enrollment-token/${id}`, target: 'device/pi-1' });
    expect(JSON.stringify(audit?.details)).not.toContain(token);

    const again = await enroll({ token, device: 'pi-2' });
    expect(again.statusCode).toBe(401);
    expect(again.json().message).toBe('enrollment token unknown, used or expired');
  });

  it('answers 409 for a device id that exists, and leaves the token unused', async () => {
    const { token } = await issue();
    const taken = await enroll({ token, device: 'pi-1' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().message).toBe('device pi-1 exists');
    expect((await enroll({ token, device: 'pi-3' })).statusCode).toBe(201);
  });

  it('rolls back when a credential issuer fails: no device, token still usable', async () => {
    const { token } = await issue();
    const failed = await enroll({ token, device: 'pi-4', labels: { refuse: 'yes' } });
    expect(failed.statusCode).toBe(500);
    expect(await api.prisma.device.count({ where: { id: 'pi-4' } })).toBe(0);
    expect((await enroll({ token, device: 'pi-4' })).statusCode).toBe(201);
  });

  it('refuses an expired or unknown token with 401', async () => {
    const { id, token } = await issue();
    await api.prisma.enrollmentToken.update({
      where: { id },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect((await enroll({ token, device: 'pi-5' })).statusCode).toBe(401);
    expect((await enroll({ token: 'pfe_guess', device: 'pi-5' })).statusCode).toBe(401);
    expect(await api.prisma.device.count({ where: { id: 'pi-5' } })).toBe(0);
  });

  it('answers 400 naming the field for a bad ttl, labels or device id', async () => {
    const ttl = await api.call('admin', 'POST', '/v1/enrollment-tokens', { ttl: '10s' });
    expect(ttl.json().message).toBe('body.ttl: must be at least 60s');
    const group = await api.call('admin', 'POST', '/v1/enrollment-tokens', {
      ttl: 600,
      group: 'nope',
    });
    expect(group.statusCode).toBe(404);
    const device = await enroll({ token: 'pfe_x', device: 'a/b' });
    expect(device.statusCode).toBe(400);
    expect(device.json().message).toMatch(/^body\.device: must match/);
  });

  it('lists tokens with their state and withdraws one', async () => {
    const listed = await api.call('admin', 'GET', '/v1/enrollment-tokens');
    const states = listed.json().items.map((t: { state: string }) => t.state);
    expect(states).toEqual(['used', 'used', 'used', 'expired']);
    expect(listed.body).not.toMatch(/pfe_/);
    const { id, token } = await issue();
    expect((await api.call('admin', 'DELETE', `/v1/enrollment-tokens/${id}`)).statusCode).toBe(204);
    expect((await enroll({ token, device: 'pi-6' })).statusCode).toBe(401);
    expect((await api.call('admin', 'DELETE', `/v1/enrollment-tokens/${id}`)).statusCode).toBe(404);
  });
});

describe('enrollment rate limit', () => {
  let api: ApiHarness;

  beforeAll(async () => {
    api = await openApiHarness();
  });
  afterAll(async () => {
    await api?.close();
  });

  const attempt = (remoteAddress: string) =>
    api.app.inject({
      method: 'POST',
      url: '/v1/enroll',
      remoteAddress,
      payload: { token: 'pfe_guess', device: 'pi-1' },
    });

  it('allows 10 attempts a minute per client address, then 429 with Retry-After', async () => {
    for (let i = 0; i < 10; i++) expect((await attempt('192.0.2.7')).statusCode).toBe(401);
    const limited = await attempt('192.0.2.7');
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(6);
    expect(limited.json()).toEqual({
      error: 'Too Many Requests',
      message: expect.stringMatching(
        /^too many enrollment attempts from 192\.0\.2\.7; retry in \d+s$/,
      ),
    });
    // Another address has its own budget.
    expect((await attempt('192.0.2.8')).statusCode).toBe(401);
  });
});
