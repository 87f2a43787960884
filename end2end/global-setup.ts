// Waits until the app answers: cargo-leptos (or scripts/e2e-csr.sh) starts it and the suite
// together. Polls /api/me, which only answers JSON once the server behind any proxy is up.
import type { FullConfig } from '@playwright/test';

export default async function globalSetup(config: FullConfig) {
  const baseURL = config.projects[0].use.baseURL as string;
  const deadline = Date.now() + 60_000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${baseURL}/api/me`);
      if (response.ok && (response.headers.get('content-type') ?? '').includes('json')) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`Signoff did not answer /api/me at ${baseURL} within 60 s (${last})`);
}
