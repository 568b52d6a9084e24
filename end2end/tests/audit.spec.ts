import { expect, test } from '@playwright/test';
import { hydrated } from './login';

test('the audit filters show what the address asks for, before and after the page is live', async ({ browser, page }) => {
  // As the server renders them, before any script runs (here: none at all), for a shared link.
  const context = await browser.newContext({ storageState: '.auth/admin.json', javaScriptEnabled: false });
  const plain = await context.newPage();
  await plain.goto('/audit?environment=STG&project=web&action=pause&actor=bob');
  // The environments and projects are the server's to list (the page waits for them).
  await expect(plain.getByLabel('Environment')).toHaveValue('STG');
  await expect(plain.getByLabel('Project')).toHaveValue('web');
  await expect(plain.getByLabel('Action')).toHaveValue('pause');
  await expect(plain.getByLabel('Actor')).toHaveValue('bob');
  await context.close();

  // Live: the same, and Clear (a link, no reload) puts every filter back to "any".
  await page.goto('/audit?environment=STG&action=pause&actor=bob');
  await hydrated(page);
  await expect(page.getByLabel('Environment')).toHaveValue('STG');
  await expect(page.getByLabel('Action')).toHaveValue('pause');
  await expect(page.getByLabel('Actor')).toHaveValue('bob');
  await page.getByRole('link', { name: 'Clear' }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await expect(page.getByLabel('Environment')).toHaveValue('');
  await expect(page.getByLabel('Action')).toHaveValue('');
  await expect(page.getByLabel('Actor')).toHaveValue('');
  // A filter picked and submitted is what the next page shows, and what it lists.
  await page.getByLabel('Action').selectOption('login');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/action=login/);
  await expect(page.getByLabel('Action')).toHaveValue('login');
  await expect(page.locator('tr[data-action="login"]').first()).toBeVisible();
  await expect(page.locator('tr[data-action]:not([data-action="login"])')).toHaveCount(0);
});
