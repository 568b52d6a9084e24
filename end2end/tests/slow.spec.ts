import { expect, test } from '@playwright/test';
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { hydrated } from './login';

// A slow AWS account, as a person meets it. Stands for PRD's CloudFormation answering
// DescribeStacks seconds late (throttled, far away): a proxy in front of moto holds those answers,
// and PRD is pointed at it through the running config file (applied live, then put back).

const HOLD_MS = 6_000;

// Forwards everything to moto; DescribeStacks answers are held HOLD_MS. Remembers when it let
// the first held answer go.
function slowProxy(target: string) {
  let firstRelease: number | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const held = body.includes('Action=DescribeStacks');
      if (held) await new Promise((r) => setTimeout(r, HOLD_MS));
      const upstream = http.request(target + req.url, { method: req.method, headers: req.headers }, (answer) => {
        if (held) firstRelease ??= Date.now();
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => { res.writeHead(502); res.end(); });
      upstream.end(body);
    });
  });
  return {
    listen: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => {
      resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    })),
    firstRelease: () => firstRelease,
    close: () => server.close(),
  };
}

// PRD's endpoint in the running config file, changed and applied live; answers the old text.
async function pointPrdAt(page: import('@playwright/test').Page, file: string, endpoint: string) {
  const before = readFileSync(file, 'utf8');
  const start = before.indexOf('name = "PRD"');
  const end = before.indexOf('[[environments]]', start);
  const block = before.slice(start, end).replace(/endpoint_url = "[^"]*"/, `endpoint_url = "${endpoint}"`);
  writeFileSync(file, before.slice(0, start) + block + before.slice(end));
  await expect.poll(async () => (await page.request.get('/api/v1/config')).text(), { timeout: 15_000 }).toContain(endpoint);
  return before;
}

test('a slow account holds back its own card, not the page', async ({ page }, testInfo) => {
  const file = process.env.SEED_CONFIG;
  const moto = process.env.MOTO_URL;
  test.skip(!file || !moto, 'needs SEED_CONFIG and MOTO_URL (scripts/test sets them)');
  const proxy = slowProxy(moto!);
  const endpoint = await proxy.listen();
  const original = await pointPrdAt(page, file!, endpoint);
  try {
    // The page loads — the whole document — while AWS still holds the stack back.
    await page.goto('/projects/network/PRD');
    const loaded = Date.now();
    const card = page.getByRole('article', { name: 'Stack PRD-NETWORK' });
    await expect(card.getByText('Asking AWS for PRD-NETWORK…')).toBeVisible();
    await expect(page.getByRole('tab', { name: 'PRD' })).toBeVisible();
    await expect(card.getByRole('heading', { name: 'Recent deployments' })).toBeVisible();
    await hydrated(page);
    expect(proxy.firstRelease() === undefined || proxy.firstRelease()! > loaded, 'the page waited for AWS').toBe(true);
    await page.screenshot({ path: testInfo.outputPath('slow-account.png') });

    // Then the card fills in by itself, from the browser's own ask.
    await expect(card.locator('.deployed-build')).toHaveText(/network-master-\d+/, { timeout: 30_000 });
    await expect(card.getByRole('button', { name: 'Deploy', exact: true })).toBeVisible();
    await expect(card.getByText('Asking AWS for PRD-NETWORK…')).toHaveCount(0);
  } finally {
    writeFileSync(file!, original);
    await expect.poll(async () => (await page.request.get('/api/v1/config')).text(), { timeout: 15_000 }).not.toContain(endpoint);
    proxy.close();
  }
});
