import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardPage, loadDashboardAssets } from './plugin.js';

describe('dashboardPage', () => {
  const app = Fastify();
  beforeAll(async () => {
    await app.register(async (root) => dashboardPage(root));
  });
  afterAll(() => app.close());

  it('serves the page at / with a policy that runs only its own scripts', async () => {
    const page = await app.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.body).toContain('<script type="module" src="/dashboard/js/main.js"></script>');
    expect(page.body).toContain('<label for="token">API token</label>');
  });

  it('serves every file the page links, each with its type', async () => {
    for (const [url, type] of [
      ['/dashboard/js/main.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/js/view-node.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/dashboard.css', 'text/css; charset=utf-8'],
      ['/dashboard/favicon.svg', 'image/svg+xml'],
    ]) {
      const response = await app.inject(url!);
      expect([url, response.statusCode, response.headers['content-type']]).toEqual([
        url,
        200,
        type,
      ]);
    }
  });

  it('serves nothing but the files it read: no path reaches the disk', async () => {
    for (const url of [
      '/dashboard/js/nope.js',
      '/dashboard/../package.json',
      '/dashboard/..%2Fpackage.json',
      '/dashboard/%2e%2e/%2e%2e/src/dashboard/plugin.ts',
      '/dashboard/',
    ]) {
      expect([url, (await app.inject(url)).statusCode]).toEqual([url, 404]);
    }
  });

  it('reads every module that main.js imports, and only page files', async () => {
    const assets = await loadDashboardAssets();
    const main = assets.get('js/main.js')!.body.toString();
    const imported = [...main.matchAll(/from '\.\/([\w-]+\.js)'/g)].map((m) => `js/${m[1]}`);
    expect(imported.length).toBeGreaterThan(3);
    for (const name of imported) expect(assets.has(name), name).toBe(true);
    expect([...assets.keys()].every((name) => /\.(html|js|css|svg)$/.test(name))).toBe(true);
  });
});
