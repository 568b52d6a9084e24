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
