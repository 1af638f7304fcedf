import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { notFound } from '../http/errors.js';

/**
 * packages/controller/dashboard-assets: two levels above this file both as src/dashboard/plugin.ts
 * (tests) and as dist/dashboard/plugin.js (built), so one path serves both.
 */
export const dashboardAssetsDir = fileURLToPath(
  new URL('../../dashboard-assets/', import.meta.url),
);

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The page runs only its own files and talks only to this controller. Should a device-reported
 * string ever reach the DOM as markup, inline scripts and handlers still would not run.
 */
const HEADERS = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Revalidated on every load, so a page never runs with the scripts of an older controller.
  'cache-control': 'no-cache',
};

export interface DashboardAsset {
  contentType: string;
  body: Buffer;
}

/** Every file of the dashboard by its path below `dir` ('index.html', 'js/main.js'). */
export async function loadDashboardAssets(
  dir: string = dashboardAssetsDir,
): Promise<Map<string, DashboardAsset>> {
  const assets = new Map<string, DashboardAsset>();
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    const contentType = CONTENT_TYPES[extname(entry.name)];
    if (!entry.isFile() || !contentType) continue;
    const path = join(entry.parentPath, entry.name);
    assets.set(relative(dir, path).split(sep).join('/'), {
      contentType,
      body: await readFile(path),
    });
  }
  if (!assets.has('index.html')) throw new Error(`dashboard: no index.html in ${dir}`);
  return assets;
}

/**
 * The dashboard: `/` and its files under `/dashboard/`, read once when the app is built. The page
 * itself is public; everything it shows comes from /v1 with the token the operator enters.
 */
export async function dashboardPage(app: FastifyInstance): Promise<void> {
  const assets = await loadDashboardAssets();
  const send = (reply: FastifyReply, asset: DashboardAsset) =>
    reply.headers(HEADERS).type(asset.contentType).send(asset.body);

  app.get('/', { schema: { hide: true } }, (_request, reply) =>
    send(reply, assets.get('index.html')!),
  );
  app.get<{ Params: { '*': string } }>(
    '/dashboard/*',
    { schema: { hide: true } },
    (request, reply) => {
      // Looked up by exact name among the files read at start: no path reaches the disk.
      const asset = assets.get(request.params['*']);
      if (!asset) throw notFound('dashboard file');
      return send(reply, asset);
    },
  );
}
