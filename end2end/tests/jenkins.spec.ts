import { expect, test } from '@playwright/test';
import { hydrated } from './login';

// The stand-in Jenkins (demo/jenkins/) runs no builds by itself here: the test starts one.
const JENKINS_URL = process.env.JENKINS_URL ?? 'http://127.0.0.1:5057';

test('a running build shows its progress, then its deploy config appears without a reload', async ({ page }, testInfo) => {
  await page.goto('/projects/network/DEV');
  await hydrated(page);
  await page.evaluate(() => ((window as any).__sameDocument = true));

  const started = await (await fetch(
    `${JENKINS_URL}/stand-in/start?job=network&duration_ms=7000&result=SUCCESS`, { method: 'POST' },
  )).json();
  const build: string = started.build;

  // The panel, top right: the build with a progress bar that moves on.
  const summary = page.locator('.jenkins-summary');
  await expect(summary).toContainText('1 running');
  await summary.click();
  const panel = page.getByRole('region', { name: 'Jenkins builds' });
  const bar = panel.getByRole('progressbar', { name: `${build} progress` });
  await expect(bar).toBeVisible();
  const first = Number(await bar.getAttribute('aria-valuenow'));
  await expect.poll(async () => Number(await bar.getAttribute('aria-valuenow'))).toBeGreaterThan(first);
  await expect(panel.getByRole('link', { name: 'Jenkins' }).first()).toHaveAttribute('href', new RegExp(`/job/network/\\d+/$`));
  await page.screenshot({ path: testInfo.outputPath('jenkins-panel.png') });

  // It finishes: the result shows, and the deploy config is in the select — same document.
  await expect(panel.locator(`[data-build="${build}"][data-phase="finished"]`)).toContainText('succeeded', { timeout: 20_000 });
  const select = page.getByRole('article').getByRole('combobox');
  await expect(select.locator(`option[value="${build}"]`)).toHaveCount(1, { timeout: 20_000 });
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});
