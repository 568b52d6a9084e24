import { expect, test, type Page } from '@playwright/test';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { logIn, hydrated } from '../tests/login';

// The deployer replaces itself with nobody noticing. Two replicas on one PostgreSQL behind a
// proxy that, like the load balancer, sends each request to replica A while A answers and to B
// otherwise. A browser (on A) starts a deployment of the deployer itself to GBL (approved by
// another person: GBL is protected), held open by
// moto's `Custom::` gate; A is stopped — SIGTERM as a rolling update does, or SIGKILL as a
// crash does — and the gate released. B takes the deployment over (at once after a SIGTERM,
// once the lease runs out after a SIGKILL), records the outcome, and the same page, its event
// stream reconnected through the proxy to B, shows it finish without a reload. The history,
// the pause and the audit trail are the database's, intact.
//
// From scripts/test: DRILL_BINARY, DRILL_CONFIG (store = the drill's PostgreSQL database,
// redirect to the proxy), DRILL_PORTS ("proxy,a,b"), DRILL_PYTHON, LEPTOS_SITE_ROOT, and the
// secrets the demo config names.

const [proxyPort, portA, portB] = (process.env.DRILL_PORTS ?? '').split(',').map(Number);
const base = `http://127.0.0.1:${proxyPort}`;
const replicas = new Map<number, ChildProcess>();

function startReplica(port: number): Promise<void> {
  const child = spawn(process.env.DRILL_BINARY!, ['--config', process.env.DRILL_CONFIG!], {
    env: { ...process.env, DEPLOYER_ADDR: `127.0.0.1:${port}`, RUST_LOG: 'info' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  replicas.set(port, child);
  // As the template's load balancer does: a replica takes requests once it is ready.
  return waitFor(`http://127.0.0.1:${port}/api/v1/ready`);
}

async function waitFor(url: string) {
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered`);
}

// The load balancer: A first; a replica that refuses the connection is skipped.
function startProxy(): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const attempt = (upstreams: number[]) => {
        const [port, ...rest] = upstreams;
        if (port === undefined) {
          res.writeHead(502).end('no replica answers');
          return;
        }
        const upstream = http.request(
          { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
            // A replica that dies mid-answer (an event stream) drops the browser's connection too.
            answer.on('error', () => res.destroy());
            answer.on('aborted', () => res.destroy());
          },
        );
        upstream.on('error', () => (res.headersSent ? res.destroy() : attempt(rest)));
        upstream.end(body);
      };
      attempt([portA, portB]);
    });
  });
  return new Promise((resolve) => server.listen(proxyPort, '127.0.0.1', () => resolve(server)));
}

function drill(...args: string[]) {
  execFileSync(process.env.DRILL_PYTHON!, [`${__dirname}/../../seed/drill.py`, process.env.DRILL_CONFIG!, ...args], {
    stdio: 'inherit',
  });
}

async function api(method: string, path: string, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${process.env.DEPLOYER_BOOTSTRAP_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.ok, `${method} ${path}: ${response.status}`).toBe(true);
  return response.json();
}

let proxy: http.Server;
test.beforeAll(async () => {
  // The builds are in S3 before the replicas start: each lists them at once.
  drill('builds', 'deployer-drill-1', 'deployer-drill-2');
  proxy = await startProxy();
  await startReplica(portA);
  await startReplica(portB);
  // Something the replacement must not lose: production is paused, with a reason.
  await api('PUT', '/api/v1/pause', { reason: 'drill: production frozen', environment: 'PRD' });
});

test.afterAll(async () => {
  for (const child of replicas.values()) child.kill('SIGKILL');
  proxy?.close();
});

async function replaceMidDeployment(page: Page, build: string, signal: NodeJS.Signals) {
  drill('reset');
  if (replicas.get(portA)?.exitCode !== null) await startReplica(portA);
  await logIn(page, 'admin', '/projects/deployer/GBL');
  await hydrated(page);
  await page.evaluate(() => ((window as any).__sameDocument = true));
  page.on('dialog', (dialog) => dialog.accept());
  const card = page.getByRole('article', { name: 'Stack GBL-DEPLOYER' });
  await card.getByRole('combobox').selectOption(build);
  await card.getByRole('button', { name: 'Deploy', exact: true }).click();
  const progress = card.getByRole('region', { name: 'Deployment progress' });
  await expect(progress).toContainText(build);
  // GBL is protected, approved by another person: the create waits until the bootstrap token's
  // holder (not admin) approves it.
  await expect(progress).toHaveAttribute('data-status', 'awaiting_approval');
  const waiting = await progress.getAttribute('data-deployment');
  await api('POST', `/api/v1/deployments/${waiting}/approve`, {});
  await expect(progress).toHaveAttribute('data-status', 'running');
  // The create is under way in CloudFormation, held open by the gate.
  await expect(progress.locator('li.step.running .step-label')).toHaveText('Watch the stack');
  const id = await progress.getAttribute('data-deployment');

  const a = replicas.get(portA)!;
  const exited = new Promise((resolve) => a.once('exit', resolve));
  a.kill(signal);
  await exited;
  drill('release');

  // B finishes it; the page, never reloaded, follows through the proxy.
  await expect(progress).toHaveAttribute('data-status', 'succeeded', { timeout: signal === 'SIGKILL' ? 45_000 : 30_000 });
  await expect(card.locator('.deployed-build')).toHaveText(build);
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);

  // What the database holds is intact: the history, the pause, the audit trail.
  await expect(card.locator('.history-table tbody tr').first()).toContainText(build);
  const pause = await api('GET', '/api/v1/pause');
  expect(JSON.stringify(pause)).toContain('drill: production frozen');
  const audit = JSON.stringify(await api('GET', '/api/v1/audit?project=deployer&environment=GBL'));
  expect(audit).toContain(id!);
  expect(audit).toContain('deploy_requested');
  expect(audit).toContain('deploy_finished');
}

test('SIGTERM, as a rolling update stops a replica: the other finishes the deployment at once', async ({ page }) => {
  await replaceMidDeployment(page, 'deployer-drill-1', 'SIGTERM');
});

test('SIGKILL, as a crash: the other takes the deployment over once the lease runs out', async ({ page }) => {
  await replaceMidDeployment(page, 'deployer-drill-2', 'SIGKILL');
});
