import { expect, test } from './fixtures';
import { COOKIE, PASSWORD, fillCredentials, openApp, uniqueName } from './helpers';

test('create account → sign out → sign in → sign out, with no navigation or reload @core', async ({ page, context, request }) => {
  const username = uniqueName('e2e');
  const mainFrameNavigations: string[] = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) mainFrameNavigations.push(frame.url());
  });

  await openApp(page);
  const startUrl = page.url();
  // Survives only if the page is never reloaded or replaced.
  await page.evaluate(() => ((window as any).__signoffMarker = 'still here'));

  const sessionCookie = async () => (await context.cookies()).find((c) => c.name === COOKIE);

  // Create an account.
  const create = await fillCredentials(page, 'Create account', username);
  await create.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  const first = await sessionCookie();
  expect(first, 'a session cookie after sign-up').toBeDefined();
  expect(first!.httpOnly).toBe(true);
  expect(first!.sameSite).toBe('Lax');
  expect(first!.path).toBe('/');

  // Sign out.
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveText('You signed out.');
  expect(await sessionCookie(), 'the browser forgot the cookie').toBeUndefined();

  // The old cookie, replayed by another client, is signed out.
  const replay = await request.get('/api/me', { headers: { cookie: `${COOKIE}=${first!.value}` } });
  expect(replay.status()).toBe(200);
  expect(await replay.json()).toBeNull();

  // Sign in again, from the keyboard.
  const signIn = await fillCredentials(page, 'Sign in', username);
  await signIn.getByLabel('Password').press('Enter');
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  const second = await sessionCookie();
  expect(second).toBeDefined();
  expect(second!.value).not.toBe(first!.value);

  // Sign out again.
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page.getByRole('form', { name: 'Create account' })).toBeVisible();
  expect(await sessionCookie()).toBeUndefined();
  const replay2 = await request.get('/api/me', { headers: { cookie: `${COOKIE}=${second!.value}` } });
  expect(await replay2.json()).toBeNull();

  // No navigation happened at any point: same document, same URL, one navigation (the first load).
  expect(await page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
  expect(page.url()).toBe(startUrl);
  expect(mainFrameNavigations).toEqual([startUrl]);
});

test('the signed-in state is rendered on the server, with no flash of the signed-out page', async ({ page, request, context, baseURL }) => {
  const username = uniqueName('ssr');
  const response = await request.post('/api/register', { form: { username, password: PASSWORD } });
  expect(response.status()).toBe(200);
  await context.addCookies((await request.storageState()).cookies);

  // With JavaScript off, what the server sent is all there is.
  const noJs = await context.browser()!.newContext({ javaScriptEnabled: false, baseURL });
  await noJs.addCookies((await request.storageState()).cookies);
  const staticPage = await noJs.newPage();
  await staticPage.goto('/');
  await expect(staticPage.getByText(`Signed in as ${username}`)).toBeVisible();
  await expect(staticPage.getByRole('form', { name: 'Sign in' })).toHaveCount(0);
  await noJs.close();

  await openApp(page);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
});

test('a wrong password is reported inline and nothing navigates @core', async ({ page }) => {
  const username = uniqueName('bad');
  await openApp(page);
  const create = await fillCredentials(page, 'Create account', username);
  await create.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();

  const signIn = await fillCredentials(page, 'Sign in', username, 'not the right password at all');
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await expect(signIn.getByRole('alert')).toHaveText('Wrong username or password.');
  await expect(page.getByText('Signed in as')).toHaveCount(0);

  const shortPassword = await fillCredentials(page, 'Create account', uniqueName('short'), 'too short');
  await shortPassword.getByRole('button', { name: 'Create account' }).click();
  await expect(shortPassword.getByRole('alert')).toContainText('at least 15 characters');
});

test('sign-out shows its pending state, then reports a failure without pretending', async ({ page }) => {
  const username = uniqueName('slow');
  await openApp(page);
  const create = await fillCredentials(page, 'Create account', username);
  await create.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();

  // Hold the request so the pending state can be seen, then answer as a failing server would.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route('**/api/logout', async (route) => {
    await held;
    await route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ code: 'unavailable', message: 'The service is temporarily unavailable.' }),
    });
  });
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  const pending = page.getByRole('button', { name: 'Signing out…' });
  await expect(pending).toBeVisible();
  await expect(pending).toBeDisabled();
  release();
  await expect(page.getByRole('alert')).toContainText('Sign-out failed');
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();

  // With the server reachable again, sign-out works.
  await page.unroute('**/api/logout');
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
});

test('after an in-page sign-out, nothing of the user is left in the page', async ({ page, request, context }) => {
  const username = uniqueName('scrub');
  expect((await request.post('/api/register', { form: { username, password: PASSWORD } })).status()).toBe(200);
  await context.addCookies((await request.storageState()).cookies);
  await openApp(page);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  await expect(page.getByRole('list', { name: 'Your sessions' }).getByRole('listitem')).toHaveCount(1);

  const hydrationData = () =>
    page.evaluate(() => {
      const inline = Array.from(document.querySelectorAll('script:not([src])')).map((s) => s.textContent);
      return JSON.stringify(inline) + JSON.stringify((window as any).__RESOLVED_RESOURCES ?? null);
    });
  // The server-rendered page carried the user's data for hydration (so this test can fail).
  expect(await hydrationData()).toContain(username);

  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page.getByRole('status')).toHaveText('You signed out.');
  const html = await page.evaluate(() => document.documentElement.outerHTML);
  const data = await hydrationData();
  for (const trace of [username, '127.0.0.1']) {
    expect(html, `the page's HTML still holds ${trace}`).not.toContain(trace);
    expect(data, `hydration data still holds ${trace}`).not.toContain(trace);
  }
});
