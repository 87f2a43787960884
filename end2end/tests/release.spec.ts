import { expect, test } from './fixtures';
import { openApp, uniqueName, fillCredentials } from './helpers';

// What users deploy: `make test` runs this suite on the release build (cargo leptos end-to-end
// --release; the Trunk release build for @core). The fixture fails any test whose page threw.

test('the page hydrates and handles an interaction in place @core', async ({ page }) => {
  const navigations: string[] = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations.push(frame.url());
  });
  await openApp(page);
  await page.evaluate(() => ((window as any).__signoffMarker = 'still here'));
  // A sign-in the wasm must handle: before hydration it would post the form natively.
  const form = await fillCredentials(page, 'Sign in', uniqueName('nobody'), 'not the password at all');
  await form.getByRole('button', { name: 'Sign in' }).click();
  await expect(form.getByRole('alert')).toHaveText('Wrong username or password.');
  expect(await page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
  expect(navigations).toHaveLength(1);
});

test('a release server is in production mode: no live-reload websocket in its policy', async ({ request }) => {
  const response = await request.get('/');
  const policy = response.headers()['content-security-policy'] ?? '';
  expect(policy).toContain("script-src 'self' 'nonce-");
  expect(policy).not.toContain('ws:');
  expect(await response.text()).not.toContain('ws://');
});
