import { expect, test } from '@playwright/test';
import { answer, hydrated } from './login';

// The seeded web project runs web-master-103 in DEV, web-master-101 in STG, web-master-99 in PRD.

test('the matrix shows what runs where and promotes DEV to STG in one click, live', async ({ page }, testInfo) => {
  await page.goto('/');
  await hydrated(page);
  await page.getByRole('link', { name: 'Promotion' }).click();
  await expect(page).toHaveURL(/\/promotion$/);
  await page.evaluate(() => ((window as any).__sameDocument = true));

  const matrix = page.getByRole('table', { name: 'Builds by project and environment' });
  const web = matrix.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'Web front end' }) });
  const stg = web.locator('td[data-environment="STG"]');
  const prd = web.locator('td[data-environment="PRD"]');
  await expect(web.locator('td[data-environment="DEV"]')).toHaveAttribute('data-build', 'web-master-103');
  await expect(stg).toHaveAttribute('data-build', 'web-master-101');
  await expect(stg).toContainText('2 builds behind DEV');
  // GBL stands apart: the deployer runs there alone, nothing to promote from.
  const deployer = matrix.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'Deployer' }) });
  await expect(deployer.locator('td[data-environment="GBL"]')).toHaveAttribute('data-build', 'deployer-master-157');
  await expect(deployer.getByRole('button')).toHaveCount(0);
  await page.screenshot({ path: testInfo.outputPath('matrix.png'), fullPage: true });

  await stg.getByRole('button', { name: 'Promote web-master-103 to STG' }).click();
  expect(await answer(page, 'Promote')).toContain('Promote web-master-103 to web in STG?');
  await expect(stg).toHaveAttribute('data-build', 'web-master-103');
  await expect(stg).not.toContainText('behind');
  await expect(prd.getByRole('button', { name: 'Promote web-master-103 to PRD' })).toBeVisible();
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);

  // The stack's own page agrees.
  await stg.getByRole('link', { name: 'web-master-103' }).click();
  await expect(page.getByRole('article', { name: 'Stack STG-WEB' }).locator('.deployed-build')).toHaveText('web-master-103');
});

test('the stack card offers the build of the environment before, live, and promotes it in one click', async ({ page }) => {
  await page.goto('/projects/search/STG');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack STG-SEARCH' });
  await expect(card.locator('.deployed-build')).toHaveText('search-master-214');

  // A colleague deploys search-master-213 to DEV: this card offers to promote it, without a reload.
  const started = await page.evaluate(async () => {
    const response = await fetch('/api/request_deployment', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ project: 'search', environment: 'DEV', build: 'search-master-213' }),
    });
    return response.status;
  });
  expect(started).toBe(200);
  const button = card.getByRole('button', { name: 'Promote search-master-213 from DEV' });
  await button.click();
  await answer(page, 'Promote');
  await expect(card.locator('.deployed-build')).toHaveText('search-master-213');
  await expect(card.getByRole('region', { name: 'Deployment progress' })).toHaveAttribute('data-status', 'succeeded');
  // STG now runs what DEV runs: nothing left to promote here.
  await expect(button).toHaveCount(0);
});
