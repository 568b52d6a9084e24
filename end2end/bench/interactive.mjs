// Time from navigation to an interactive Deploy button, in headless Chromium (Debian's), for
// scripts/bench. Usage: node interactive.mjs <base url> <api token> <path> [runs]
// Prints one JSON line: {"path", "runs", "ms": [...], "phases": [...]} — each run in a fresh
// browser context (cold cache: every wasm file fetched), the token sent as the Authorization
// header; `first` is an extra run before them (the server's caches cold); `phases` says where
// each run's time went (ms from navigation start): the document's
// first byte and last byte, the last wasm file in, the `load` event, hydrated.
import { chromium } from 'playwright-core';

const [base, token, path, runs = '5'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const ms = [];
const phases = [];
// One run more than asked, first: the server's first page after it started (its caches cold:
// the listing of builds, the stacks) is reported apart as `first`.
let first = null;
for (let i = 0; i <= Number(runs); i++) {
  const context = await browser.newContext({ extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
  const page = await context.newPage();
  // When the app marks itself hydrated, on the page's own clock.
  await page.addInitScript(() => {
    new MutationObserver((_, observer) => {
      if (document.body?.dataset.hydrated === 'true') {
        window.__hydratedAt = performance.now();
        observer.disconnect();
      }
    }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-hydrated'] });
  });
  const start = Date.now();
  await page.goto(base + path, { waitUntil: 'commit' });
  // Hydrated (the app marks the body) and a Deploy button that is enabled.
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.getByRole('button', { name: 'Deploy', exact: true }).first().waitFor({ state: 'visible', timeout: 30_000 });
  await page.waitForFunction(() => [...document.querySelectorAll('button')]
    .some((b) => b.textContent.trim() === 'Deploy' && !b.disabled), null, { timeout: 30_000 });
  const took = Date.now() - start;
  const phase = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const wasm = performance.getEntriesByType('resource').filter((r) => r.name.includes('.wasm'));
    return {
      first_byte: Math.round(nav.responseStart),
      document: Math.round(nav.responseEnd),
      wasm_files: wasm.length,
      wasm_in: Math.round(Math.max(0, ...wasm.map((r) => r.responseEnd))),
      load: Math.round(nav.loadEventStart),
      hydrated: Math.round(window.__hydratedAt ?? -1),
    };
  });
  if (i === 0) {
    first = { ms: took, ...phase };
  } else {
    ms.push(took);
    phases.push(phase);
  }
  await context.close();
}
await browser.close();
console.log(JSON.stringify({ path, runs: ms.length, ms, phases, first }));
