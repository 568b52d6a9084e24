import { expect, test, type Page } from '@playwright/test';
import { confirmIfAsked } from './login';

// The demo config announces to the stand-in team chat (the stand-in Jenkins serves it):
// a deployment's start and end reach it, and the admin's Webhooks page shows each delivery.

const JENKINS_URL = process.env.JENKINS_URL ?? 'http://127.0.0.1:5057';

async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

test('a deployment is announced to the team chat, and the admin sees the deliveries', async ({ page, request }, testInfo) => {
  await page.goto('/projects/search/DEV');
  await hydrated(page);
  const card = page.getByRole('article');
  const select = card.getByRole('combobox');
  const build = await select.locator('option:not([disabled])').first().getAttribute('value');
  expect(build).toBeTruthy();
  await select.selectOption(build!);
  await card.getByRole('button', { name: 'Deploy' }).click();
  await confirmIfAsked(page, /^Deploy /);
  await expect(card.getByRole('region', { name: 'Deployment progress' })).toHaveAttribute('data-status', /succeeded|failed|refused/);

  // The chat got "started" and the ending, in Slack's shape.
  await expect.poll(async () => {
    const chat = await (await request.get(`${JENKINS_URL}/stand-in/chat`)).json();
    return chat.filter((m: { text: string }) => m.text.includes(`\`${build}\``)).length;
  }).toBeGreaterThanOrEqual(2);

  await page.getByRole('link', { name: 'Webhooks' }).click();
  await expect(page).toHaveURL(/\/webhooks$/);
  await expect(page.locator('tr[data-webhook="team-chat"]')).toContainText('every environment');
  const delivered = page.locator('tr[data-status="delivered"]').filter({ hasText: build! });
  await expect(delivered.first()).toBeVisible();
  await expect(delivered.first()).toContainText('team-chat');
  await page.screenshot({ path: testInfo.outputPath('webhooks.png'), fullPage: true });
});
