import { expect, test, type Page } from '@playwright/test';

// The seed (seed/seed.py) deploys web-master-103 to DEV-WEB and web-master-99 to PRD-WEB; the
// deployer project only deploys to GBL.

async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

test('pick a project and an environment without a reload', async ({ page }, testInfo) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/projects\/network\/DEV$/);
  await hydrated(page);
  // Survives client-side navigation, vanishes on a reload.
  await page.evaluate(() => ((window as any).__sameDocument = true));

  await page.getByRole('navigation', { name: 'Projects' }).getByRole('link', { name: /Web front end/ }).click();
  await expect(page).toHaveURL(/\/projects\/web\/DEV$/);
  const card = page.getByRole('article', { name: 'Stack DEV-WEB' });
  await expect(card).toBeVisible();
  await expect(card.locator('.badge')).toHaveText('create complete');
  await expect(card.locator('.deployed-build')).toHaveText('web-master-103');

  const select = card.getByRole('combobox');
  const options = select.locator('option');
  // Newest first, by when each folder was written: the seed writes web-master-104 and web-latest
  // last, one after the other, and S3's LastModified counts whole seconds, so which of the two
  // comes first depends on the clock (a second can turn between them).
  await expect(select.locator('option[value="web-master-104"]')).toHaveCount(1);
  expect(['web-master-104', 'web-latest']).toContain(await options.first().getAttribute('value'));
  await expect(select.locator('option[value="web-master-103"]')).toContainText('deployed');
  const unfinished = select.locator('option[value="web-master-104"]');
  await expect(unfinished).toBeDisabled();
  await expect(unfinished).toContainText('not deployable: no parameters.json');
  await expect(select.locator('option[value="web-latest"]')).toBeDisabled();
  // 100 comes after 99 after 9: numeric, not text, order.
  const ids = await options.evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
  const master = ids.filter((id) => id.startsWith('web-master-')).map((id) => Number(id.split('-').pop()));
  expect(master).toEqual([...master].sort((a, b) => b - a));
  expect(master).toContain(100);

  await page.getByRole('tab', { name: 'PRD' }).click();
  await expect(page).toHaveURL(/\/projects\/web\/PRD$/);
  const prd = page.getByRole('article', { name: 'Stack PRD-WEB' });
  await expect(prd.locator('.deployed-build')).toHaveText('web-master-99');
  await expect(page.getByRole('tab', { name: 'PRD' })).toHaveAttribute('aria-selected', 'true');

  await page.getByRole('navigation', { name: 'Projects' }).getByRole('link', { name: /Deployer/ }).click();
  await expect(page).toHaveURL(/\/projects\/deployer\/GBL$/);
  await expect(page.getByRole('article', { name: 'Stack GBL-DEPLOYER' })).toBeVisible();
  await expect(page.getByRole('tab', { name: 'DEV' })).toHaveAttribute('aria-disabled', 'true');

  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);

  await page.getByRole('navigation', { name: 'Projects' }).getByRole('link', { name: /Web front end/ }).click();
  await expect(page.getByRole('article', { name: 'Stack DEV-WEB' })).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('web-dev.png'), fullPage: true });
});

test('a shared link shows the same view, and a stack not deployed says so', async ({ page }, testInfo) => {
  await page.goto('/projects/web/STG');
  const card = page.getByRole('article', { name: 'Stack STG-WEB' });
  await expect(card.locator('.deployed-build')).toHaveText('web-master-101');

  await page.goto('/projects/deployer/GBL');
  await expect(page.getByRole('article', { name: 'Stack GBL-DEPLOYER' }).locator('.badge')).toHaveText('create complete');

  await page.goto('/projects/search/PRD');
  const prd = page.getByRole('article', { name: 'Stack PRD-SEARCH' });
  await expect(prd.locator('.badge')).toHaveText('not deployed');
  await expect(prd).toContainText('does not exist yet');
  await page.screenshot({ path: testInfo.outputPath('search-prd.png'), fullPage: true });
});

test('unknown projects and pages are explained, not blank', async ({ page }) => {
  await page.goto('/projects/nope/DEV');
  await expect(page.getByRole('alert')).toContainText('No project is called “nope”');
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('alert')).toContainText('Page not found');
});

test('a project whose build lands in the bucket appears in the open page, with no config change', async ({ page }, testInfo) => {
  test.skip(!process.env.SEED_PYTHON || !process.env.SEED_CONFIG, 'needs the seed (scripts/test sets SEED_PYTHON and SEED_CONFIG)');
  await page.goto('/projects/web/DEV');
  await hydrated(page);
  await page.evaluate(() => ((window as any).__sameDocument = true));
  const nav = page.getByRole('navigation', { name: 'Projects' });
  await expect(nav.getByRole('link', { name: /ledger/ })).toHaveCount(0);

  // What a new team's build server does: write its first build. Nothing else.
  const { execFileSync } = await import('node:child_process');
  execFileSync(process.env.SEED_PYTHON!, ['../seed/seed.py', process.env.SEED_CONFIG!, '--new-project', 'ledger']);

  const link = nav.getByRole('link', { name: /ledger/ });
  await expect(link).toBeVisible({ timeout: 30_000 });
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  await page.screenshot({ path: testInfo.outputPath('new-project.png'), fullPage: true });
  await link.click();
  await expect(page).toHaveURL(/\/projects\/ledger\/DEV$/);
  const card = page.getByRole('article', { name: 'Stack DEV-LEDGER' });
  await expect(card).toBeVisible();
  await expect(card.getByRole('combobox').locator('option[value="ledger-master-1"]')).toHaveCount(1);
});
