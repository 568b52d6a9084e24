import { expect, test, type Locator, type Page } from '@playwright/test';
import { hydrated } from './login';

// Everything a mouse does, the keyboard does: this journey never clicks. PRD is protected in the
// demo, so an update there waits for approval — long enough to be cancelled (moto finishes every
// stack operation inside the call). PRD-WEB runs the seeded web-master-99, and still does after
// this test (the update is cancelled), as protected.spec.ts expects.

// Tab (or Shift+Tab) until `target` has the focus, as a person would.
async function tabTo(page: Page, target: Locator, backwards = false) {
  for (let i = 0; i < 120; i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return;
    await page.keyboard.press(backwards ? 'Shift+Tab' : 'Tab');
  }
  throw new Error(`Tab never reached ${target}`);
}

test('deploy, cancel and pause with the keyboard alone', async ({ page }, testInfo) => {
  await page.goto('/projects/web/PRD');
  await hydrated(page);
  const card = page.getByRole('article', { name: 'Stack PRD-WEB' });
  const deployed = card.locator('.deployed-build');
  await expect(deployed).toHaveText('web-master-99');

  // Pick the build with the arrow keys, then Deploy with Enter.
  const select = card.getByRole('combobox');
  await tabTo(page, select);
  for (let i = 0; i < 30 && (await select.inputValue()) !== 'web-master-102'; i++) {
    await page.keyboard.press('ArrowDown');
  }
  await expect(select).toHaveValue('web-master-102');
  const deploy = card.getByRole('button', { name: 'Deploy', exact: true });
  await tabTo(page, deploy);
  await page.keyboard.press('Enter');
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress).toHaveAttribute('data-status', 'awaiting_approval');

  // Cancel: Tab to it, Enter; the dialog takes the focus, keeps Tab inside, and Enter confirms.
  const cancel = progress.getByRole('button', { name: 'Cancel' });
  await tabTo(page, cancel);
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: /Cancel the deployment of web-master-102 to PRD-WEB/ });
  await expect(dialog).toBeVisible();
  const yes = dialog.getByRole('button', { name: 'Cancel the deployment' });
  await expect(yes).toBeFocused();
  for (let i = 0; i < 5; i++) {
    await page.keyboard.press('Tab');
    expect(await dialog.evaluate((d) => d.contains(document.activeElement))).toBe(true);
  }
  await page.keyboard.press('Shift+Tab');
  expect(await dialog.evaluate((d) => d.contains(document.activeElement))).toBe(true);
  await tabTo(page, yes);
  await page.screenshot({ path: testInfo.outputPath('cancel-dialog.png') });
  await page.keyboard.press('Enter');
  await expect(dialog).toHaveCount(0);
  await expect(progress).toHaveAttribute('data-status', 'cancelled');
  await expect(deployed).toHaveText('web-master-99');
  // Said politely to screen readers, without taking the focus.
  await expect(page.locator('[aria-live="polite"]').filter({ hasText: 'web-master-102 to PRD-WEB: cancelled' })).toHaveCount(1);

  // Pause: the dialog opens on its reason; Escape closes it and the focus comes back.
  const pause = page.getByRole('button', { name: 'Pause', exact: true });
  await tabTo(page, pause, true);
  await page.keyboard.press('Enter');
  const pauseDialog = page.getByRole('dialog', { name: 'Pause deployments' });
  await expect(pauseDialog.getByRole('textbox')).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(pauseDialog).toHaveCount(0);
  await expect(pause).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(pauseDialog.getByRole('textbox')).toBeFocused();
  await page.keyboard.type('keyboard drill');
  await tabTo(page, pauseDialog.getByRole('button', { name: 'Pause deployments' }));
  await page.keyboard.press('Enter');
  const banner = page.getByRole('alert', { name: 'Deployments paused' });
  await expect(banner).toContainText('keyboard drill');
  await expect(banner).toHaveAttribute('aria-live', 'assertive');
  await expect(deploy).toBeDisabled();

  // And Resume, the same way (it asks first).
  const resume = page.getByRole('button', { name: 'Resume deployments' });
  await tabTo(page, resume, true);
  await page.keyboard.press('Enter');
  const resumeDialog = page.getByRole('dialog', { name: 'Resume deployments?' });
  await expect(resumeDialog.getByRole('button', { name: 'Resume deployments' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(banner).toHaveCount(0);
  await expect(deploy).toBeEnabled();
});
