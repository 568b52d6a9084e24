import { defineConfig } from '@playwright/test';
import base from './playwright.config';

// The self-replacement drill (end2end/drill/): its own deployers (two replicas on PostgreSQL
// behind a small proxy standing in for the load balancer), started by the spec itself.
const proxyPort = (process.env.DRILL_PORTS ?? '').split(',')[0];

export default defineConfig({
  ...base,
  testDir: './drill',
  globalSetup: undefined,
  timeout: 180_000,
  expect: { timeout: 30_000 },
  use: { ...base.use, baseURL: `http://127.0.0.1:${proxyPort}`, storageState: undefined },
});
