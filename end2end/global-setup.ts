import { chromium, type FullConfig } from '@playwright/test';
import { logIn } from './tests/login';

// Every spec runs logged in as the admin (one real login, its session cookie reused); the
// login spec starts from no session and signs in as each demo user itself.
export default async function globalSetup(config: FullConfig) {
  const { baseURL, launchOptions } = config.projects[0].use;
  const browser = await chromium.launch(launchOptions);
  const page = await browser.newPage({ baseURL });
  await logIn(page, 'admin');
  await page.context().storageState({ path: '.auth/admin.json' });
  await browser.close();
}
