import { expect, test, type Page } from '@playwright/test';
import { answer } from './login';

async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

test('pausing in one tab shows the banner in another at once and blocks its deploys', async ({ context }, testInfo) => {
  const pauser = await context.newPage();
  const watcher = await context.newPage();
  await pauser.goto('/projects/web/DEV');
  await watcher.goto('/projects/search/STG');
  await hydrated(pauser);
  await hydrated(watcher);
  await watcher.evaluate(() => ((window as any).__sameDocument = true));
  const deployButton = watcher.getByRole('article').getByRole('button', { name: 'Deploy' });
  await expect(deployButton).toBeEnabled();

  await pauser.getByRole('button', { name: 'Pause' }).click();
  const dialog = pauser.getByRole('dialog', { name: 'Pause deployments' });
  await expect(dialog.getByRole('button', { name: 'Pause deployments' })).toBeDisabled(); // a reason is required
  await dialog.getByRole('textbox').fill('investigating 5xx on web');
  await dialog.getByRole('button', { name: 'Pause deployments' }).click();

  const banner = watcher.getByRole('alert', { name: 'Deployments paused' });
  await expect(banner).toBeVisible();
  await expect(banner).toContainText('investigating 5xx on web');
  await expect(deployButton).toBeDisabled();
  await expect(watcher.getByRole('article').getByRole('status').filter({ hasText: 'paused by' })).toContainText('investigating 5xx on web');
  expect(await watcher.evaluate(() => (window as any).__sameDocument)).toBe(true);
  await watcher.screenshot({ path: testInfo.outputPath('paused.png'), fullPage: true });

  await pauser.getByRole('button', { name: 'Resume deployments' }).click();
  await answer(pauser, 'Resume deployments');
  await expect(banner).toHaveCount(0);
  await expect(deployButton).toBeEnabled();

  await watcher.getByRole('link', { name: 'Audit' }).click();
  await expect(watcher).toHaveURL(/\/audit$/);
  const rows = watcher.locator('.audit-table tbody tr');
  await expect(rows.first()).toHaveAttribute('data-action', 'unpause');
  await expect(rows.nth(1)).toHaveAttribute('data-action', 'pause');
  await expect(rows.nth(1)).toContainText('investigating 5xx on web');
});

test('a pause the server refuses says which kind of no it is, and why, in the dialog', async ({ page }, testInfo) => {
  await page.goto('/projects/web/DEV');
  await hydrated(page);
  await page.getByRole('button', { name: 'Pause' }).click();
  const dialog = page.getByRole('dialog', { name: 'Pause deployments' });
  await dialog.getByRole('textbox').fill('x'.repeat(600));
  await dialog.getByRole('button', { name: 'Pause deployments' }).click();

  // The server function's error arrives as the same error object as on the REST API.
  const refusal = dialog.getByRole('alert');
  await expect(refusal).toContainText('Not a valid request');
  await expect(refusal).toContainText('at most 500 characters; this one has 600');
  await expect(refusal).toHaveAttribute('data-code', 'bad_request');
  await page.screenshot({ path: testInfo.outputPath('refused-pause.png') });

  // Nothing was paused.
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('alert', { name: 'Deployments paused' })).toHaveCount(0);
});
