import { defineConfig } from '@playwright/test';

// `cargo leptos end-to-end` starts the server at the workspace's site-addr, then runs this suite.
const baseURL = process.env.SIGNOFF_URL ?? 'http://127.0.0.1:3000';

/** The tagged specs that need a harness of their own, unless this run is that harness. */
function skipped(): RegExp | undefined {
  const tags = [!process.env.SIGNOFF_OIDC && '@oidc', !process.env.SIGNOFF_SECURE && '@secure'].filter(Boolean);
  return tags.length ? new RegExp(tags.join('|')) : undefined;
}

export default defineConfig({
  testDir: './tests',
  globalSetup: './global-setup.ts',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  // The single sign-on specs need a provider and two instances: scripts/e2e-oidc.sh runs them.
  // The secure cookie mode's specs need a server with COOKIE_SECURE=true on http://localhost:
  // scripts/e2e-secure.sh runs them.
  grepInvert: skipped(),
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'off',
    screenshot: 'off',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        browserName: 'chromium',
        // Debian's Chromium: this project never downloads a browser.
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
          ],
        },
      },
    },
  ],
});
