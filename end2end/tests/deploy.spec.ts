import { expect, test, type Page } from '@playwright/test';
import { answer } from './login';

// Deploys against the seeded moto: network runs network-master-45 in STG; web's feature-login
// builds import an export nobody provides, so the pre-flight refuses them.

async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

// Deploys `build`; one older than the deployed build asks first (answered yes), and what it
// asked is returned.
async function deploy(page: Page, build: string, older = false): Promise<string | undefined> {
  const card = page.getByRole('article');
  await card.getByRole('combobox').selectOption(build);
  await card.getByRole('button', { name: 'Deploy' }).click();
  return older ? answer(page, `Deploy ${build}`) : undefined;
}

test('deploy, watch it succeed live, and roll back in one click', async ({ page, context }, testInfo) => {
  await page.goto('/projects/network/STG');
  await hydrated(page);
  await page.evaluate(() => ((window as any).__sameDocument = true));
  const card = page.getByRole('article', { name: 'Stack STG-NETWORK' });
  await expect(card.locator('.deployed-build')).toHaveText('network-master-45');

  // A second tab on the same stack follows along without a reload.
  const other = await context.newPage();
  await other.goto('/projects/network/STG');
  await hydrated(other);
  await expect(other.getByRole('article').locator('.deployed-build')).toHaveText('network-master-45');

  await deploy(page, 'network-master-46');
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress).toHaveAttribute('data-status', 'succeeded');
  await expect(card.locator('.deployed-build')).toHaveText('network-master-46');
  await expect(other.getByRole('article').locator('.deployed-build')).toHaveText('network-master-46');
  await page.screenshot({ path: testInfo.outputPath('deployed.png'), fullPage: true });

  await deploy(page, 'network-ipv6-rollout-2');
  await expect(card.locator('.deployed-build')).toHaveText('network-ipv6-rollout-2');
  await expect(progress).toHaveAttribute('data-status', 'succeeded');

  // The build deployed before the current one is one click (and a confirmation) away.
  await card.getByRole('button', { name: 'Roll back to network-master-46' }).click();
  // The confirmation comes with the verdict on that build, checked before the click; Escape
  // leaves everything as it was, and the focus where it was.
  const dialog = page.getByRole('dialog', { name: 'Roll STG-NETWORK back to network-master-46?' });
  await expect(dialog).toContainText(/Checked: its imports exist|Warnings:/);
  await expect(dialog.getByRole('button', { name: 'Roll back to network-master-46' })).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await expect(card.getByRole('button', { name: 'Roll back to network-master-46' })).toBeFocused();
  await expect(card.locator('.deployed-build')).toHaveText('network-ipv6-rollout-2');
  await card.getByRole('button', { name: 'Roll back to network-master-46' }).click();
  await page.screenshot({ path: testInfo.outputPath('rollback-dialog.png') });
  await answer(page, 'Roll back to network-master-46');
  await expect(card.locator('.deployed-build')).toHaveText('network-master-46');
  await expect(card.locator('.history-table tbody tr')).toHaveCount(3);

  // Any deploy of a build older than the deployed one asks with the verdict first, too.
  const older = await deploy(page, 'network-master-41', true);
  await expect(card.locator('.deployed-build')).toHaveText('network-master-41');
  expect(older).toContain('Deploy network-master-41, older than the deployed network-master-46?');
  expect(older).toMatch(/Checked: its imports exist|Warnings:/);
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});

test('a refused build shows its reason and leaves the stack alone', async ({ page }, testInfo) => {
  await page.goto('/projects/web/PRD');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack PRD-WEB' });
  await deploy(page, 'web-feature-login-2');
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress).toHaveAttribute('data-status', 'refused');
  await expect(progress).toContainText('"PRD-sessions-TableName", which is not exported in PRD');
  await expect(card.locator('.deployed-build')).toHaveText('web-master-99');
  await page.screenshot({ path: testInfo.outputPath('refused.png'), fullPage: true });

  await progress.getByRole('link', { name: 'details' }).click();
  await expect(page).toHaveURL(/\/deployments\/d-/);
  await expect(page.getByRole('heading', { name: 'Deployment' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Deployment progress' })).toHaveAttribute('data-status', 'refused');

  // The audit trail says the outcome in words and colour: a refusal is not a green "finished".
  await page.goto('/audit?action=deploy_finished');
  const badge = page.locator('.audit-table tbody tr').first().locator('.action');
  await expect(badge).toHaveText('deploy finished: refused');
  await expect(badge).toHaveClass(/outcome-refused/);
  const colours = await badge.evaluate((el) => getComputedStyle(el).color);
  expect(colours).not.toBe('rgb(31, 138, 76)'); // --ok
  const why = page.locator('.audit-table tbody tr').first().locator('td.why');
  const [cell, box] = await Promise.all([why.boundingBox(), page.locator('.card:has(.audit-table)').boundingBox()]);
  expect(cell!.x + cell!.width).toBeLessThanOrEqual(box!.x + box!.width + 1);
  await page.screenshot({ path: testInfo.outputPath('audit.png'), fullPage: true });
});

test('a build picked in the select stays picked while a colleague deploys the same stack', async ({ page }) => {
  await page.goto('/projects/network/PRD');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack PRD-NETWORK' });
  await expect(card.locator('.deployed-build')).toHaveText('network-master-44');
  await card.getByRole('combobox').selectOption('network-master-42');

  // Someone else deploys network-master-45 there: the card re-renders with it, live.
  const started = await page.evaluate(async () => {
    const response = await fetch('/api/request_deployment', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ project: 'network', environment: 'PRD', build: 'network-master-45' }),
    });
    return response.status;
  });
  expect(started).toBe(200);
  await expect(card.locator('.deployed-build')).toHaveText('network-master-45');
  await expect(card.locator('.history-table tbody tr')).toHaveCount(1);
  // The pick is still the pick: Deploy would deploy what the person chose.
  await expect(card.getByRole('combobox')).toHaveValue('network-master-42');
});

test('the card ends on the last deployment however quickly they follow each other', async ({ page, context }) => {
  // Each deployment's events refetch the card several times within a few milliseconds; the page
  // must always settle on the newest answer, never on an older one that arrived late.
  const other = await context.newPage();
  await other.goto('/projects/network/DEV');
  await hydrated(other);
  await page.goto('/projects/network/DEV');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack DEV-NETWORK' });
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(card.locator('.deployed-build')).toHaveText('network-master-46');
  for (const build of ['network-master-45', 'network-master-46', 'network-master-45', 'network-master-46', 'network-master-45', 'network-master-46']) {
    await deploy(page, build, build === 'network-master-45');
    await expect(progress).toHaveAttribute('data-status', 'succeeded');
    await expect(progress).toContainText(build);
    await expect(card.locator('.deployed-build')).toHaveText(build);
    await expect(other.getByRole('article').locator('.deployed-build')).toHaveText(build);
  }
});
