import { expect, type Page } from '@playwright/test';

// The real single sign-on: the deployer sends the browser to the local identity provider
// (demo/oidc-provider.mjs), the person signs in there, and comes back logged in.
export async function logIn(page: Page, user: string, path = '/') {
  await page.goto(path);
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill('demo');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator(`.user[data-user="${user}"]`)).toBeVisible();
}

export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

// Answers the page's open question — its one in-page dialog — with the button named `yes`, and
// says what it asked (title and details).
export async function answer(page: Page, yes: string): Promise<string> {
  const dialog = page.getByRole('dialog');
  await expect(dialog).toBeVisible();
  const asked = await dialog.innerText();
  await dialog.getByRole('button', { name: yes, exact: true }).click();
  await expect(dialog).toHaveCount(0);
  return asked;
}

// For a deploy whose build may be older than the deployed one (then the page asks first):
// answers yes if the dialog comes within a moment, else goes on.
export async function confirmIfAsked(page: Page, yes: RegExp) {
  const dialog = page.getByRole('dialog');
  try {
    await dialog.waitFor({ state: 'visible', timeout: 3_000 });
  } catch {
    return;
  }
  await dialog.getByRole('button', { name: yes }).click();
  await expect(dialog).toHaveCount(0);
}
