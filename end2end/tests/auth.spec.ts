import { expect, test, type Page } from '@playwright/test';
import { answer, confirmIfAsked, hydrated, logIn } from './login';

// Each test here starts with no session and signs in itself, through the real identity provider.
test.use({ storageState: { cookies: [], origins: [] } });

/** Calls a server function from the page, as the page itself does (same origin, JSON). */
async function serverFn(page: Page, name: string, args: object) {
  return page.evaluate(async ([name, args]) => {
    const response = await fetch(`/api/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(args),
    });
    return { status: response.status, body: await response.json() };
  }, [name, args] as const);
}

test('a deployer logs in, deploys to DEV, is refused PRD with the reason, and logs out', async ({ page }, testInfo) => {
  // Nobody reaches the deployer without logging in: the page sends the browser to sign in.
  await logIn(page, 'deployer', '/projects/search/DEV');
  await expect(page).toHaveURL(/\/projects\/search\/DEV$/);
  await hydrated(page);
  const user = page.locator('.user');
  await expect(user).toContainText('Dev Deployer');
  await expect(user).toContainText('deployer');

  const card = page.getByRole('article');
  await card.getByRole('combobox').selectOption('search-master-214');
  await card.getByRole('button', { name: 'Deploy' }).click();
  await confirmIfAsked(page, /^Deploy search-master-214$/);
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress).toHaveAttribute('data-status', 'succeeded', { timeout: 30_000 });
  await expect(card.locator('.deployed-build')).toHaveText('search-master-214');

  // PRD needs its own right: the button says why it is disabled, and the server refuses too.
  await page.goto('/projects/search/PRD');
  await hydrated(page);
  const prd = page.getByRole('article');
  await expect(prd.getByRole('button', { name: 'Deploy' })).toBeDisabled();
  await expect(prd.locator('[data-denied="deploy"]')).toContainText('may not deploy to PRD');
  await page.screenshot({ path: testInfo.outputPath('deployer-prd.png'), fullPage: true });
  const refused = await serverFn(page, 'request_deployment', {
    project: 'search', environment: 'PRD', build: 'search-master-214',
  });
  expect(refused.status).toBe(403);
  expect(refused.body.code).toBe('forbidden');
  expect(refused.body.message).toContain('deploy to PRD');

  // The audit log names the person.
  await page.goto('/audit?action=deploy_requested');
  await expect(page.locator('.audit-table tbody tr').first()).toContainText('deployer');

  // Logging out ends the session: the API answers 401 with the old cookie.
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('heading', { name: 'You are logged out' })).toBeVisible();
  const me = await page.request.get('/api/v1/me');
  expect(me.status()).toBe(401);
});

test('a viewer sees everything and may change nothing', async ({ page }) => {
  await logIn(page, 'viewer', '/projects/web/DEV');
  await hydrated(page);
  await expect(page.locator('.user')).toContainText('viewer');
  const card = page.getByRole('article');
  await expect(card.getByRole('button', { name: 'Deploy' })).toBeDisabled();
  await expect(card.locator('[data-denied="deploy"]')).toContainText('may not deploy to DEV');
  await expect(page.getByRole('button', { name: 'Pause' })).toBeDisabled();
  await expect(page.getByRole('link', { name: 'Tokens' })).toHaveCount(0);
  const refused = await serverFn(page, 'pause_deployments', { reason: 'x', environment: null, cancel_in_flight: false });
  expect(refused.status).toBe(403);
});

test('an admin makes an API token, sees it once, uses it, and revokes it', async ({ page, playwright, baseURL }) => {
  await logIn(page, 'admin', '/tokens');
  await hydrated(page);
  const create = page.getByRole('button', { name: 'Create token' });
  await page.getByLabel('Name').fill('e2e-ci');
  await expect(create).toBeEnabled();
  await page.getByLabel('Role').selectOption('deployer');
  await create.click();
  const secret = (await page.locator('[data-secret]').textContent())!.trim();
  expect(secret).toMatch(/^dpl_/);
  await expect(page.locator('tr[data-token="e2e-ci"]')).toContainText('active');
  await page.screenshot({ path: test.info().outputPath('tokens.png'), fullPage: true });

  const api = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { authorization: `Bearer ${secret}` } });
  expect((await api.get('/api/v1/me')).status()).toBe(200);
  await page.locator('tr[data-token="e2e-ci"]').getByRole('button', { name: 'Revoke' }).click();
  expect(await answer(page, 'Revoke')).toContain('Revoke the token "e2e-ci"?');
  await expect(page.locator('tr[data-token="e2e-ci"]')).toContainText('revoked');
  expect((await api.get('/api/v1/me')).status()).toBe(401);
  // Shown once: a reload lists the token, never its secret.
  await page.reload();
  await expect(page.locator('tr[data-token="e2e-ci"]')).toBeVisible();
  expect(await page.content()).not.toContain(secret);
  await api.dispose();
});

test('what is typed before the page is live is kept: the token form fills in before its code arrives', async ({ page }) => {
  await logIn(page, 'admin', '/tokens');
  await hydrated(page);
  // The page again, its wasm held back: the server-rendered form is there, the code is not yet.
  let holding = true;
  const held: Array<() => Promise<void>> = [];
  await page.route('**/pkg/**/*.wasm', (route) => holding ? held.push(() => route.continue()) : route.continue());
  await page.reload({ waitUntil: 'commit' });
  await page.getByLabel('Name').fill('e2e-early');
  await page.getByLabel('Role').selectOption('deployer');
  await expect(page.locator('body[data-hydrated]')).toHaveCount(0);
  // The code arrives (and whatever it loads next) and hydrates the form the person filled in.
  holding = false;
  while (held.length) await held.shift()!();
  await hydrated(page);
  await expect(page.getByLabel('Name')).toHaveValue('e2e-early');
  await expect(page.getByLabel('Role')).toHaveValue('deployer');
  await page.getByRole('button', { name: 'Create token' }).click();
  await expect(page.locator('tr[data-token="e2e-early"]')).toContainText('deployer');
  await expect(page.locator('[data-secret]')).toBeVisible();
});
