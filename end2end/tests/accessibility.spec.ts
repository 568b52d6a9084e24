import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { confirmIfAsked, hydrated } from './login';

// Every page passes axe-core's audit (WCAG 2.1 A and AA rules and best practices) with no serious
// or critical violation: names for every control, status in text as well as colour, contrast,
// landmarks. A failure lists each rule with the elements that break it.
async function audit(page: Page, what: string) {
  const results = await new AxeBuilder({ page })
    .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'])
    .analyze();
  const grave = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const words = grave.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')} ${detail(n)}`).join('\n    ')}`);
  expect.soft(words, `${what}: accessibility violations`).toEqual([]);
}

// What broke, in short: for contrast the two colours and the ratio.
function detail(node: { any: { data?: unknown }[] }): string {
  const data = node.any[0]?.data as { fgColor?: string; bgColor?: string; contrastRatio?: number } | undefined;
  return data?.fgColor ? `${data.fgColor} on ${data.bgColor} = ${data.contrastRatio}` : '';
}

test('every page passes the accessibility audit', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  await expect(page.getByRole('navigation', { name: 'Projects' })).toBeVisible();
  await audit(page, 'home');

  await page.goto('/projects/web/DEV');
  await hydrated(page);
  await expect(page.getByRole('article')).toBeVisible();
  await expect(page.getByRole('article').getByRole('combobox')).toBeVisible();
  await audit(page, 'project');

  // A deployment of its own (search in DEV is the suite's to churn), so a progress panel and a
  // deployment page with steps and events are audited too.
  await page.goto('/projects/search/DEV');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack DEV-SEARCH' });
  await card.getByRole('combobox').selectOption('search-master-215');
  await card.getByRole('button', { name: 'Deploy' }).click();
  await confirmIfAsked(page, /^Deploy /);
  const panel = card.getByRole('region', { name: 'Deployment progress' });
  await expect(panel).toHaveAttribute('data-status', 'succeeded', { timeout: 30_000 });
  const id = await panel.getAttribute('data-deployment');
  await audit(page, 'project with a finished deployment');

  // A confirmation: deploying an older build asks first.
  await card.getByRole('combobox').selectOption('search-master-210');
  await card.getByRole('button', { name: 'Deploy' }).click();
  const question = page.getByRole('dialog', { name: /Deploy search-master-210, older than/ });
  await expect(question).toBeVisible();
  await audit(page, 'a confirmation dialog');
  await page.keyboard.press('Escape');
  await expect(question).toHaveCount(0);
  await expect(card.locator('.deployed-build')).toHaveText('search-master-215');

  await page.goto(`/deployments/${id}`);
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  await audit(page, 'deployment');

  await page.goto('/audit');
  await hydrated(page);
  await expect(page.locator('.audit-table tbody tr').first()).toBeVisible();
  await audit(page, 'audit');

  await page.goto('/promotion');
  await hydrated(page);
  await expect(page.getByRole('table')).toBeVisible();
  await audit(page, 'promotion');

  await page.goto('/tokens');
  await hydrated(page);
  await audit(page, 'tokens');

  await page.goto('/webhooks');
  await hydrated(page);
  await audit(page, 'webhooks');

  await page.goto('/projects/web/DEV');
  await hydrated(page);
  await page.getByRole('button', { name: 'Pause', exact: true }).click();
  const dialog = page.getByRole('dialog', { name: 'Pause deployments' });
  await expect(dialog).toBeVisible();
  await audit(page, 'the pause dialog');
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
});
