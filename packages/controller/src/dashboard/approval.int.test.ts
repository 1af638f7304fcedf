import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './headless-chromium.js';
import {
  FLEET,
  OPERATOR_TOKEN,
  VIEWER_TOKEN,
  WEB_V2,
  seedFleet,
  startDashboardController,
  waitUntil,
  type DashboardController,
} from './testing.js';

const live = { timeout: 10_000, interval: 100 };

/** An approval after the canary, and berlin-08 away when batch 2's turn comes (deferred). */
describe('dashboard in headless Chromium: approving a batch, deferred devices', () => {
  let controller: DashboardController;
  let browser: Browser;
  let rolloutId: string;
  /** Every POST the pages sent, with the token it carried. */
  const posts: { path: string; authorization: string | undefined }[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [controller, browser] = await Promise.all([startDashboardController(), launchChromium()]);
    const { db, sync, engine, converge, ingest } = controller;
    await seedFleet(db);
    await sync.recompute();
    await converge(FLEET.map((d) => d.id));
    await ingest({ online: [{ device: 'berlin-08', status: 'offline', at: new Date() }] });
    const started = await engine.start(
      {
        service: 'web',
        image: WEB_V2,
        targets: { groups: ['edge'] },
        strategy: {
          canary: 2,
          batchSize: 3,
          policy: { bake: 0, approval: { after: ['canary'] }, offlineDevices: 'defer' },
        },
      },
      'alice',
    );
    rolloutId = started.id;
    await controller.sent(['berlin-01', 'berlin-02'], WEB_V2);
    await converge(['berlin-01', 'berlin-02']);
    await waitUntil('the canary done, batch 1 held for an approval', async () => {
      const status = await engine.status(rolloutId);
      return status?.awaitingApproval === true && status.currentBatch === 1;
    });
  });

  afterAll(async () => {
    await browser?.close();
    await controller?.close();
  });

  /** A page signed in with `token`, showing the rollout. */
  async function signIn(token: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('request', (request) => {
      if (request.method() === 'POST') {
        posts.push({
          path: new URL(request.url()).pathname,
          authorization: request.headers()['authorization'],
        });
      }
    });
    await page.goto(controller.url);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Open dashboard' }).click();
    await page.locator(`article[data-rollout="${rolloutId}"] table.batches`).waitFor();
    return page;
  }
  const rolloutOf = (page: Page) => page.locator(`article[data-rollout="${rolloutId}"]`);

  it('says why batch 1 waits and offers to approve it; a viewer token is refused, shown as such', async () => {
    const page = await signIn(VIEWER_TOKEN);
    const rollout = rolloutOf(page);
    const waiting = rollout.getByRole('list', { name: 'Why devices wait' });
    await expect
      .poll(() => waiting.locator('li').allTextContents(), live)
      .toContainEqual(expect.stringMatching(/^\d+ devices?: waiting for approval after batch 0/));
    const approve = rollout.getByRole('button', { name: 'Approve batch 1' });
    await approve.click();
    const refused = 'Cannot approve: needs role operator; token wall-screen has viewer';
    await expect.poll(() => rollout.locator('.approval .error').textContent(), live).toBe(refused);
    expect(await approve.getAttribute('aria-describedby')).toBe(`approve-error-${rolloutId}`);
    expect(await approve.getAttribute('aria-disabled')).toBeNull();
    // Focus stays on the button through the redraws, so a keyboard user can read why and retry.
    expect(await approve.evaluate((button) => button === button.ownerDocument.activeElement)).toBe(
      true,
    );
    expect(posts).toEqual([
      { path: `/v1/rollouts/${rolloutId}/approve`, authorization: `Bearer ${VIEWER_TOKEN}` },
    ]);
    expect((await controller.engine.status(rolloutId))?.awaitingApproval).toBe(true);
    await page.context().close();
  });

  it('approves with an operator token: batch 1 starts and the page shows it without the button', async () => {
    const page = await signIn(OPERATOR_TOKEN);
    const rollout = rolloutOf(page);
    await rollout.getByRole('button', { name: 'Approve batch 1' }).click();
    await expect.poll(() => rollout.locator('button[data-approve]').count(), live).toBe(0);
    expect(posts.at(-1)).toEqual({
      path: `/v1/rollouts/${rolloutId}/approve`,
      authorization: `Bearer ${OPERATOR_TOKEN}`,
    });
    const status = await controller.engine.status(rolloutId);
    expect(status?.approvedBatches).toEqual([0]);
    expect(status?.awaitingApproval).toBe(false);
    await controller.sent(['berlin-03', 'berlin-04', 'berlin-05'], WEB_V2);
    const count = (batch: number, name: string) =>
      rollout.locator(`tr[data-batch="${batch}"] td[data-count="${name}"]`).textContent();
    await expect.poll(() => count(1, 'updating'), live).toBe('3');
    expect(await rollout.locator('.meta').textContent()).not.toContain('awaiting approval');

    // Batch 2: berlin-08 is offline when its turn comes, so it is deferred, and not counted done.
    await controller.converge(['berlin-03', 'berlin-04', 'berlin-05']);
    await controller.sent(['berlin-06', 'berlin-07'], WEB_V2);
    await expect.poll(() => count(2, 'deferred'), live).toBe('1');
    expect(await count(2, 'updating')).toBe('2');
    expect(
      await rollout.locator('tr[data-batch="2"] [role="img"]').getAttribute('aria-label'),
    ).toBe('0 of 3 finished: 2 updating, 1 deferred');
    expect(await rollout.locator('tr[data-batch="2"] .fraction').textContent()).toBe('0/3');
    expect(await rollout.locator('.totals').textContent()).toContain(
      '1 deferred until they return',
    );
    await page.context().close();
    expect(pageErrors).toEqual([]);
  });
});
