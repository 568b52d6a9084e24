// Time from navigation to an interactive Deploy button, in headless Chromium (Debian's), for
// scripts/bench. Usage: node interactive.mjs <base url> <api token> <path> [runs]
// Prints one JSON line: {"path", "runs", "ms": [...]} — each run in a fresh browser context
// (cold cache: every wasm file fetched), the token sent as the Authorization header.
import { chromium } from 'playwright-core';

const [base, token, path, runs = '5'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const ms = [];
for (let i = 0; i < Number(runs); i++) {
  const context = await browser.newContext({ extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
  const page = await context.newPage();
  const start = Date.now();
  await page.goto(base + path, { waitUntil: 'commit' });
  // Hydrated (the app marks the body) and a Deploy button that is enabled.
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.getByRole('button', { name: 'Deploy', exact: true }).first().waitFor({ state: 'visible', timeout: 30_000 });
  await page.waitForFunction(() => [...document.querySelectorAll('button')]
    .some((b) => b.textContent.trim() === 'Deploy' && !b.disabled), null, { timeout: 30_000 });
  ms.push(Date.now() - start);
  await context.close();
}
await browser.close();
console.log(JSON.stringify({ path, runs: ms.length, ms }));
