import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './headless-chromium.js';
import {
  FLEET,
  VIEWER_TOKEN,
  WEB_V2,
  seedFleet,
  startDashboardController,
  waitUntil,
  type DashboardController,
} from './testing.js';

/** Kept after the run so a person can look at the dashboard mid-rollout. */
const SCREENSHOT = join(tmpdir(), 'podfleet-dashboard', 'rollout-in-progress.png');

const FAILURE = 'web: not ready within 60s (container exited with status 1)';
/** What a compromised or buggy agent could send: it must show as text, never run. */
const MARKUP = '<img src=x onerror=alert(1)>';
const live = { timeout: 10_000, interval: 100 };
/** Evaluated in the page (as a string: this package compiles without the DOM's types). */
const STORED_TOKEN = "localStorage.getItem('podfleet.token')";

describe('dashboard in headless Chromium', () => {
  let controller: DashboardController;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let rolloutId: string;
  const dialogs: string[] = [];
  const requests: string[] = [];
  /** Uncaught errors and console errors (a refused script or style would log one). */
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [controller, browser] = await Promise.all([startDashboardController(), launchChromium()]);
    const { db, sync, engine, converge, ingest } = controller;
    await seedFleet(db);
    await sync.recompute();
    await converge(FLEET.map((d) => d.id));
    // berlin-08 went quiet 40 minutes ago; its last will said so.
    const away = new Date(Date.now() - 40 * 60_000);
    await ingest({ online: [{ device: 'berlin-08', status: 'offline', at: away }] });
    await db.prisma.device.update({ where: { id: 'berlin-08' }, data: { lastSeen: away } });

    const started = await engine.start(
      {
        service: 'web',
        image: WEB_V2,
        targets: { groups: ['edge', 'lab'] },
        strategy: { canary: 2, batchSize: 3, maxFailures: 1 },
      },
      'alice',
    );
    rolloutId = started.id;
    await controller.sent(['berlin-01', 'berlin-02'], WEB_V2);
    await converge(['berlin-01', 'berlin-02']);
    await controller.sent(['berlin-03', 'berlin-04', 'berlin-05'], WEB_V2);
    await converge(['berlin-03', 'berlin-04'], new Map([['berlin-04', FAILURE]]));
    await ingest({
      events: [
        {
          event: {
            id: randomUUID(),
            device: 'berlin-04',
            at: new Date().toISOString(),
            type: 'error',
            message: MARKUP,
            service: 'web',
          },
          receivedAt: new Date(),
        },
      ],
    });
    await waitUntil('berlin-04 failed', async () => {
      const status = await engine.status(rolloutId);
      return status?.batches[1]?.counts.failed === 1 && status.batches[1].counts.succeeded === 1;
    });

    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('request', (request) => requests.push(new URL(request.url()).pathname));
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  });

  afterAll(async () => {
    await browser?.close();
    await controller?.close();
  });

  const batchCount = (batch: number, count: string) =>
    page
      .locator(
        `article[data-rollout="${rolloutId}"] tr[data-batch="${batch}"] td[data-count="${count}"]`,
      )
      .textContent();

  it('asks for an API token, then shows the devices with liveness and versions', async () => {
    await page.goto(controller.url);
    const token = page.getByLabel('API token');
    await token.waitFor();
    expect(await page.locator('#dashboard').isHidden()).toBe(true);
    await token.fill(VIEWER_TOKEN);
    await page.getByRole('button', { name: 'Open dashboard' }).click();

    const devices = page.getByRole('table', { name: 'Devices', exact: true });
    await devices.waitFor();
    const rows = devices.locator('tbody tr');
    expect(await rows.locator('th').allTextContents()).toEqual(FLEET.map((d) => d.id));
    const row = (id: string) => devices.getByRole('row').filter({ hasText: id });
    const cells = async (id: string) => (await row(id).locator('td').allTextContents()).join(' | ');
    expect(await cells('berlin-01')).toMatch(
      /^online \| .* \| 5\.4\.2 quadlet \| 257 \| 0\.1\.0 \| /,
    );
    expect(await cells('berlin-08')).toMatch(
      /^offline \| offline \| 40 min ago \| .* \| 4\.9\.3 quadlet \| 255 \| /,
    );
    expect(await cells('paris-01')).toMatch(/online \| .* \| 4\.3\.1 service \| 252 \| /);
    // berlin-05 was sent batch 1's manifest but has not applied it yet.
    expect(await row('berlin-05').locator('td').last().textContent()).toBe('1 / 2');
    expect(await row('berlin-01').locator('td').last().textContent()).toBe('2 / 2');
    expect(await page.evaluate(STORED_TOKEN)).toBe(VIEWER_TOKEN);
  });

  it('shows the groups with their selectors, priorities and pins', async () => {
    const groups = page.getByRole('table', { name: 'Groups', exact: true });
    const lab = groups.getByRole('row').filter({ hasText: 'lab' });
    expect(await lab.locator('td').allTextContents()).toEqual([
      'site=paris',
      '20',
      'web r1',
      `pinned web → registry.example/acme/web@sha256:${'a'.repeat(64)}`,
    ]);
    const edge = groups.getByRole('row').filter({ hasText: 'edge' });
    expect(await edge.locator('td').allTextContents()).toEqual([
      'site=berlin',
      '10',
      'web r1',
      'none',
    ]);
    const devicePins = page.getByRole('table', { name: 'Device pins' });
    expect(await devicePins.locator('tbody tr').textContent()).toContain('paris-02web');
  });

  it('shows the rollout per batch with counts, and failed devices with their reasons', async () => {
    const rollout = page.locator(`article[data-rollout="${rolloutId}"]`);
    await rollout.getByRole('table', { name: 'Batches of the web rollout' }).waitFor();
    expect(await rollout.locator('h3').textContent()).toBe(`web → ${WEB_V2}`);
    expect(await rollout.locator('.state').textContent()).toBe('running');
    const rows = await rollout
      .locator('table.batches tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.children].map((cell) => cell.textContent)));
    // Batch, state, progress, succeeded, failed, updating, pending, offline.
    expect(rows).toEqual([
      ['Canary', 'done', '2/2', '2', '0', '0', '0', '0'],
      ['Batch 1', 'running', '2/3', '1', '1', '1', '0', '0'],
      ['Batch 2', 'pending', '0/3', '0', '0', '0', '3', '1'],
    ]);
    expect(
      await rollout.locator('tr[data-batch="1"] [role="img"]').getAttribute('aria-label'),
    ).toBe('2 of 3 finished: 1 succeeded, 1 failed, 1 updating');
    // The agent's rollback, classified by the controller, before the reason the agent gave.
    const failed = rollout.getByRole('table', { name: 'Failed devices' });
    expect(await failed.locator('tbody tr').allTextContents()).toEqual([
      `berlin-04Batch 1rolled-back${FAILURE}`,
    ]);
    expect(await rollout.locator('details.excluded li').allTextContents()).toEqual([
      'paris-01: pinned by group lab',
      'paris-02: pinned on the device',
    ]);
  });

  it('updates a batch’s counts from the stream as more devices succeed, without reloading', async () => {
    // A mark on the document: a reload would drop it.
    await page.evaluate('window.sameDocument = true');
    const excluded = page.locator(`article[data-rollout="${rolloutId}"] details.excluded`);
    await excluded.locator('summary').click();
    const { converge, sent } = controller;
    await converge(['berlin-05']);
    await expect.poll(() => batchCount(1, 'succeeded'), live).toBe('2');
    expect(await batchCount(1, 'updating')).toBe('0');
    // berlin-08 is offline: under offlineDevices wait it stays pending, and the page says why.
    await expect.poll(() => batchCount(2, 'updating'), live).toBe('2');
    expect(await batchCount(2, 'pending')).toBe('1');
    expect(await batchCount(2, 'offline')).toBe('1');
    const waiting = page
      .locator(`article[data-rollout="${rolloutId}"]`)
      .getByRole('list', { name: 'Why devices wait' });
    await expect
      .poll(() => waiting.locator('li').allTextContents(), live)
      .toEqual(['1 device: offline: waiting for it to return']);
    await sent(['berlin-06', 'berlin-07'], WEB_V2);
    // berlin-07 stays updating: with berlin-08 away, the batch (and the rollout) is not done.
    await converge(['berlin-06']);
    await expect.poll(() => batchCount(2, 'succeeded'), live).toBe('1');
    const happenings = page.locator(`article[data-rollout="${rolloutId}"] ul.happenings li`);
    expect(await happenings.allTextContents()).toContain('berlin-06 runs ' + WEB_V2);
    expect(await page.evaluate('window.sameDocument')).toBe(true);
    // Redrawn on every status, yet what the operator opened stays open.
    expect(await excluded.getAttribute('open')).toBe('');
    // Every status of the running rollout came from its stream, none from GET /v1/rollouts/:id.
    expect(requests.filter((path) => path.startsWith(`/v1/rollouts/${rolloutId}`))).toEqual([
      `/v1/rollouts/${rolloutId}/stream`,
    ]);
  });

  it('shows a device’s events on click, with what the device sent as text', async () => {
    await page
      .getByRole('table', { name: 'Devices', exact: true })
      .getByRole('button', { name: 'berlin-04' })
      .click();
    const events = page.getByRole('table', { name: 'Events of berlin-04' });
    await events.waitFor();
    const rows = await events
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [...tr.children].slice(1).map((cell) => cell.textContent)),
      );
    expect(rows).toEqual([
      ['error', 'web', MARKUP],
      [
        'rollback',
        'web',
        `${WEB_V2} → registry.example/acme/web:1.4 (apply, restored): ${FAILURE}`,
      ],
    ]);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    const pressed = page.locator('button[data-device="berlin-04"][aria-pressed="true"]');
    expect(await pressed.count()).toBeGreaterThan(0);
  });

  it('keeps a screenshot of the dashboard mid-rollout', async () => {
    expect(await page.locator(`article[data-rollout="${rolloutId}"] .state`).textContent()).toBe(
      'running',
    );
    await mkdir(join(tmpdir(), 'podfleet-dashboard'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    const png = await readFile(SCREENSHOT);
    expect(png.subarray(0, 8)).toEqual(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    );
    expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
    expect(png.readUInt32BE(16)).toBe(1280);
    expect(png.readUInt32BE(20)).toBeGreaterThanOrEqual(900);
    // A blank or nearly blank page compresses to a few kilobytes.
    expect(png.length).toBeGreaterThan(40_000);
    expect(pageErrors).toEqual([]);
  });

  it('shows what a device reported about itself as text: markup, controls and bidi overrides', async () => {
    const device = 'hostile-01';
    await controller.db.prisma.device.create({ data: { id: device, labels: { note: MARKUP } } });
    await controller.ingest({
      states: [
        {
          report: {
            device,
            generation: 0,
            reportedAt: new Date().toISOString(),
            agent: { version: `${MARKUP}\u202e1.0` },
            host: {
              podman: MARKUP,
              systemd: '\x1b[2J257\x9b',
              arch: 'x86_64',
              unitStyle: 'service',
            },
            services: [],
          },
          receivedAt: new Date(),
        },
      ],
    });
    await page.reload();
    const row = page
      .getByRole('table', { name: 'Devices', exact: true })
      .getByRole('row')
      .filter({ hasText: device });
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    expect(cells.slice(3)).toEqual([
      `note=${MARKUP}`,
      `${MARKUP} service`,
      '\\x1b[2J257\\u009b',
      `${MARKUP}\\u202e1.0`,
      '0 / 0',
    ]);
    expect(await page.locator('img').count()).toBe(0);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
  });

  it('says "token refused" for a token the controller does not know, and asks again', async () => {
    const stranger = await browser.newContext();
    try {
      const other = await stranger.newPage();
      await other.goto(controller.url);
      await other.getByLabel('API token').fill('pft_not_a_token');
      await other.getByRole('button', { name: 'Open dashboard' }).click();
      const alert = other.locator('#token-error');
      await expect
        .poll(() => alert.textContent(), live)
        .toBe('Token refused: unknown or revoked token. Enter another token.');
      expect(await other.getByLabel('API token').isVisible()).toBe(true);
      expect(await other.locator('#dashboard').isHidden()).toBe(true);
      expect(await other.evaluate(STORED_TOKEN)).toBeNull();
    } finally {
      await stranger.close();
    }
  });
});
