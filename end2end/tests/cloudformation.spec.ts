import { expect, test, type Page } from '@playwright/test';
import { confirmIfAsked, hydrated } from './login';

// What a person sees of CloudFormation at work, end to end against the local AWS (moto behind
// demo/local_aws/, which takes its time resource by resource, fails and rolls back like AWS).
// STG-WEB is this file's stack; its pace is slowed so that each resource is seen in progress.

const PACE_SECONDS = 0.8;

async function pace(page: Page, seconds: number) {
  const moto = process.env.MOTO_URL!;
  const answer = await page.request.post(`${moto}/_local/pace`, { data: { seconds, stack: 'STG-WEB' } });
  expect(answer.ok()).toBe(true);
}

async function deploy(page: Page, build: string) {
  const card = page.getByRole('article', { name: 'Stack STG-WEB' });
  await card.getByRole('combobox').selectOption(build);
  await card.getByRole('button', { name: 'Deploy' }).click();
  await confirmIfAsked(page, new RegExp(`^Deploy ${build}`));
}

test.describe.configure({ mode: 'serial' });

test.beforeEach(async ({ page }) => {
  test.skip(!process.env.MOTO_URL, 'needs MOTO_URL (scripts/test sets it)');
  await pace(page, PACE_SECONDS);
});

test.afterAll(async ({ browser }) => {
  if (!process.env.MOTO_URL) return;
  const page = await browser.newPage();
  await pace(page, 0);
  await page.close();
});

test('a deploy shows each resource in progress, then done, live', async ({ page }, testInfo) => {
  await page.goto('/projects/web/STG');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack STG-WEB' });
  await expect(card.locator('.deployed-build')).toHaveText('web-master-101');
  await deploy(page, 'web-master-102');
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  // While the stack is UPDATE_IN_PROGRESS, a resource is seen being updated — pushed to the
  // page, no reload — and the count of resources done moves.
  const working = progress.locator('table.events tr', { hasText: /UPDATE_IN_PROGRESS/ }).filter({ hasNotText: 'STG-WEB' });
  await expect(working.first()).toBeVisible();
  await expect(progress).toHaveAttribute('data-status', 'running');
  await page.screenshot({ path: testInfo.outputPath('in-progress.png'), fullPage: true });
  await expect(progress.locator('table.events tr', { hasText: /UPDATE_COMPLETE/ }).filter({ hasNotText: 'STG-WEB' }).first()).toBeVisible();
  await expect(progress).toHaveAttribute('data-status', 'succeeded', { timeout: 30_000 });
  await expect(progress).toContainText(/(\d+) of \1 resources/);
  await expect(card.locator('.deployed-build')).toHaveText('web-master-102');
});

test('cancel rolls a running update back to the stack as it was', async ({ page }, testInfo) => {
  await page.goto('/projects/web/STG');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack STG-WEB' });
  await expect(card.locator('.deployed-build')).toHaveText('web-master-102');
  // Slow enough that a person's click lands while CloudFormation is still updating (a cancel
  // in the cleanup phase comes too late, as on AWS).
  await pace(page, 2.5);
  await deploy(page, 'web-master-103');
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress.locator('table.events tr', { hasText: /UPDATE_IN_PROGRESS/ }).filter({ hasNotText: 'STG-WEB' }).first()).toBeVisible();
  await progress.getByRole('button', { name: 'Cancel' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel the deployment' }).click();
  await expect(progress).toHaveAttribute('data-status', 'cancelled', { timeout: 30_000 });
  await expect(progress.locator('table.events')).toContainText('UPDATE_ROLLBACK_COMPLETE');
  await expect(card.locator('.deployed-build')).toHaveText('web-master-102');
  await page.screenshot({ path: testInfo.outputPath('cancelled.png'), fullPage: true });
});

test("a build that fails half-way rolls back, with CloudFormation's reason", async ({ page }, testInfo) => {
  await page.goto('/projects/web/STG');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack STG-WEB' });
  await expect(card.locator('.deployed-build')).toHaveText('web-master-102');
  await deploy(page, 'web-dead-letters-2');
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress.locator('table.events tr', { hasText: 'JobsDeadLetterQueue' }).first()).toBeVisible();
  await expect(progress).toHaveAttribute('data-status', 'failed', { timeout: 30_000 });
  await expect(progress).toContainText('MessageRetentionPeriod is invalid');
  await expect(progress.locator('table.events')).toContainText('UPDATE_ROLLBACK_COMPLETE');
  await expect(card.locator('.deployed-build')).toHaveText('web-master-102');
  await page.screenshot({ path: testInfo.outputPath('rolled-back.png'), fullPage: true });

  // Rolling back is deploying an older build — which leaves STG-WEB as the seed made it, for the
  // other files.
  await pace(page, 0);
  await deploy(page, 'web-master-101');
  await expect(card.locator('.deployed-build')).toHaveText('web-master-101', { timeout: 30_000 });
  await expect(progress).toHaveAttribute('data-status', 'succeeded');
});
