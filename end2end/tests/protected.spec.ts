import { expect, test } from '@playwright/test';
import { hydrated, logIn } from './login';

// PRD is protected in the demo, and approved by another person than the one who asked. Runs after
// the specs that expect PRD-WEB to run the seeded web-master-99.

test('a PRD update waits with its change set, live, until another person approves it', async ({ page, browser }, testInfo) => {
  await page.goto('/projects/web/PRD');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack PRD-WEB' });
  const before = await card.locator('.deployed-build').textContent();
  await card.getByRole('combobox').selectOption('web-master-102');
  // What would it change? Asked without deploying (moto lists no resource changes for a new
  // image id; AWS would list the launch template and the group).
  await card.getByRole('button', { name: 'Preview' }).click();
  await expect(card.locator('.preview-box')).toContainText('web-master-102');
  await expect(card.locator('.deployed-build')).toHaveText(before!);

  // A release manager, in their own browser, asks for web-master-101 in PRD.
  const theirs = await (await browser.newContext({
    baseURL: testInfo.project.use.baseURL, storageState: { cookies: [], origins: [] },
  })).newPage();
  await logIn(theirs, 'release', '/projects/web/PRD');
  await hydrated(theirs);
  const theirCard = theirs.getByRole('article', { name: 'Stack PRD-WEB' });
  await theirCard.getByRole('combobox').selectOption('web-master-101');
  await theirCard.getByRole('button', { name: 'Deploy' }).click();

  // It waits with what it would change, shown live here; nothing is deployed; the pick stays.
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress).toHaveAttribute('data-status', 'awaiting_approval');
  await expect(progress.locator('.badge')).toHaveText('awaiting approval');
  const approval = progress.getByRole('group', { name: 'Approval' });
  await expect(approval).toContainText('release asked for it');
  // What it would change (moto lists no resource changes for a new image id; AWS would).
  await expect(approval.locator('table.changes, .no-resource-changes')).toBeVisible();
  await expect(card.locator('.deployed-build')).toHaveText(before!);
  await expect(card.getByRole('combobox')).toHaveValue('web-master-102');
  // The one who asked may not approve it, and is told why.
  const theirApproval = theirCard.getByRole('group', { name: 'Approval' });
  await expect(theirApproval.getByRole('button', { name: 'Approve and deploy' })).toBeDisabled();
  await expect(theirApproval).toContainText('needs another person to approve');
  await page.screenshot({ path: testInfo.outputPath('awaiting-approval.png'), fullPage: true });

  // Another person approves: it executes, and both pages see it end.
  await approval.getByRole('button', { name: 'Approve and deploy' }).click();
  await expect(progress).toHaveAttribute('data-status', 'succeeded');
  await expect(card.locator('.deployed-build')).toHaveText('web-master-101');
  await expect(theirCard.locator('.deployed-build')).toHaveText('web-master-101');
  await expect(card.getByRole('combobox')).toHaveValue('web-master-102');
  await theirs.context().close();
});
