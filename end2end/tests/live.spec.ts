import { expect, test } from './fixtures';
import { type Browser, type Locator, type Page } from '@playwright/test';
import { PASSWORD, device, openApp, sessionList, signIn, signUp, uniqueName } from './helpers';

// Sign-out reaches every open page at once: other tabs through the BroadcastChannel, other
// devices through the /api/events stream. Each test measures the time from the action (in one
// page) to the other page's reset, and prints it.

const SECRET = 'typed into the form and never submitted';

/** Waits until the page holds an open event stream. */
async function live(page: Page) {
  await expect(page.locator('body[data-live="connected"]')).toHaveCount(1);
}

/** From now on, records on `window` when the signed-out page appears, and leaves a marker that
 *  only survives if nothing reloads or navigates. Also types a secret into the change-password
 *  form: it must be gone after the reset. */
async function watchForReset(page: Page) {
  await page.getByLabel('Current password').fill(SECRET);
  await page.evaluate(() => {
    const w = window as any;
    w.__signoffMarker = 'still here';
    w.__resetAt = undefined;
    const check = () => {
      if (w.__resetAt === undefined && document.getElementById('sign-in-username')) {
        w.__resetAt = Date.now();
      }
    };
    new MutationObserver(check).observe(document.body, { childList: true, subtree: true });
  });
}

/** Clicks `button` from inside the page, recording the moment (same clock as `watchForReset`). */
async function act(button: Locator): Promise<number> {
  await expect(button).toBeEnabled();
  return button.evaluate((element) => {
    const at = Date.now();
    (element as HTMLElement).click();
    return at;
  });
}

/** Expects `page` to have reset to signed out with `notice`, without a reload, and returns how
 *  long after `actedAt` it happened. */
async function expectReset(page: Page, notice: string, actedAt: number, what: string): Promise<number> {
  const url = page.url();
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveText(notice);
  const resetAt = await page.evaluate(() => (window as any).__resetAt as number);
  expect(await page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
  expect(page.url()).toBe(url);
  // Nothing of the signed-in page is left: no security section, no form contents.
  await expect(page.getByRole('heading', { name: 'Security' })).toHaveCount(0);
  await expect(page.getByLabel('Current password')).toHaveCount(0);
  for (const input of await page.locator('input').all()) {
    expect(await input.inputValue()).not.toBe(SECRET);
  }
  const latency = resetAt - actedAt;
  console.log(`[live] ${what}: reset ${latency} ms after the action`);
  test.info().annotations.push({ type: 'latency', description: `${what}: ${latency} ms` });
  expect(latency).toBeGreaterThanOrEqual(0);
  expect(latency).toBeLessThan(1_000);
  return latency;
}

/** One user on two browser profiles: the laptop signed up, the phone signed in with a live
 *  stream, watched for its reset. */
async function laptopAndPhone(browser: Browser, baseURL: string | undefined, prefix: string) {
  const username = uniqueName(prefix);
  const laptop = await device(browser, baseURL);
  await signUp(laptop.page, username);
  const phone = await device(browser, baseURL);
  await signIn(phone.page, username);
  await live(phone.page);
  await watchForReset(phone.page);
  return { username, laptop, phone };
}

test('tabs: signing out in one tab resets the others, and signing in shows up too', async ({ browser, baseURL }) => {
  const context = await browser.newContext({ baseURL });
  const [a, b] = [await context.newPage(), await context.newPage()];
  // Tab B has no event stream: only the tab channel can reach it.
  await b.route('**/api/events', (route) => route.abort());
  await openApp(a);
  const username = uniqueName('tab');
  await signUp(a, username);
  await openApp(b);
  await expect(b.getByText(`Signed in as ${username}`)).toBeVisible();
  await watchForReset(b);

  const actedAt = await act(a.getByRole('button', { name: 'Sign out', exact: true }));
  await expect(a.getByRole('status')).toHaveText('You signed out.');
  await expectReset(b, 'You signed out in another tab.', actedAt, 'tab, sign out');

  // Signing in again in B shows in A, without a reload there either.
  await signIn(b, username);
  await expect(a.getByText(`Signed in as ${username}`)).toBeVisible();
  await context.close();
});

test('tabs: signing out everywhere in one tab resets the others', async ({ browser, baseURL }) => {
  const context = await browser.newContext({ baseURL });
  const [a, b] = [await context.newPage(), await context.newPage()];
  await b.route('**/api/events', (route) => route.abort());
  await openApp(a);
  await signUp(a, uniqueName('tabs'));
  await openApp(b);
  await watchForReset(b);

  const actedAt = await act(a.getByRole('button', { name: 'Sign out everywhere' }));
  await expectReset(b, 'You signed out everywhere from another tab.', actedAt, 'tab, sign out everywhere');
  await context.close();
});

test('devices: revoking a session resets that device at once', async ({ browser, baseURL }) => {
  const { username, laptop, phone } = await laptopAndPhone(browser, baseURL, 'dev');
  await expect(sessionList(laptop.page).getByRole('listitem')).toHaveCount(1);
  await laptop.page.reload();
  await expect(sessionList(laptop.page).getByRole('listitem')).toHaveCount(2);

  const actedAt = await act(sessionList(laptop.page).getByRole('button', { name: /^Sign out / }));
  await expectReset(phone.page, 'This session was ended from another device.', actedAt, 'device, revoke');
  await expect(laptop.page.getByText(`Signed in as ${username}`)).toBeVisible();
  await laptop.context.close();
  await phone.context.close();
});

test('devices: signing out everywhere resets every other device', async ({ browser, baseURL }) => {
  const { laptop, phone } = await laptopAndPhone(browser, baseURL, 'every');

  const actedAt = await act(laptop.page.getByRole('button', { name: 'Sign out everywhere' }));
  await expectReset(phone.page, 'You signed out everywhere from another device.', actedAt, 'device, sign out everywhere');
  await laptop.context.close();
  await phone.context.close();
});

test('devices: a password change resets the other devices; this browser stays signed in', async ({ browser, baseURL }) => {
  const username = uniqueName('pwlive');
  const laptop = await device(browser, baseURL);
  await signUp(laptop.page, username);
  const laptopTab = await laptop.context.newPage();
  await openApp(laptopTab);
  const phone = await device(browser, baseURL);
  await signIn(phone.page, username);
  await live(phone.page);
  await live(laptopTab);
  await watchForReset(phone.page);

  const form = laptop.page.getByRole('form', { name: 'Change password' });
  await form.getByLabel('Current password').fill(PASSWORD);
  await form.getByLabel('New password').fill('a completely different passphrase');
  const actedAt = await act(form.getByRole('button', { name: 'Change password' }));
  await expectReset(
    phone.page,
    'Your password was changed on another device, so this session was ended.',
    actedAt,
    'device, password change',
  );

  // The laptop's session goes on under its new id, in both of its tabs, with live streams.
  await expect(laptop.page.getByRole('status')).toHaveText('Password changed. Your other sessions were signed out.');
  for (const page of [laptop.page, laptopTab]) {
    await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
    await live(page);
  }
  await laptop.context.close();
  await phone.context.close();
});

test('a refused stream backs off and reconnects; a session that died meanwhile resets the page', async ({ browser, baseURL, request }) => {
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  const refused: number[] = [];
  await page.route('**/api/events', (route) => {
    refused.push(Date.now());
    return route.fulfill({ status: 503, contentType: 'application/json', body: '{"code":"unavailable","message":"x"}' });
  });
  await openApp(page);
  const username = uniqueName('back');
  await signUp(page, username);

  // Refused: the page stays signed in and retries, further apart each time (1 s, 2 s, …).
  await expect(page.locator('body[data-live="reconnecting"]')).toHaveCount(1);
  await expect.poll(() => refused.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
  const gaps = refused.slice(1).map((at, i) => at - refused[i]);
  expect(gaps[1]).toBeGreaterThan(gaps[0] * 1.5);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();

  // Once the server accepts again, the stream is back.
  await page.unroute('**/api/events');
  await expect(page.locator('body[data-live="connected"]')).toHaveCount(1, { timeout: 15_000 });

  // Refused again, and the session ends behind its back (signed out with the same cookie
  // elsewhere): the next check finds it gone and the page resets. A reload opens a new stream.
  await page.route('**/api/events', (route) => route.fulfill({ status: 503, body: '' }));
  const cookie = (await context.cookies()).find((c) => c.name === 'signoff_session')!;
  await page.reload();
  await expect(page.locator('body[data-live="reconnecting"]')).toHaveCount(1);
  const ended = await request.post('/api/logout', { headers: { cookie: `signoff_session=${cookie.value}` } });
  expect(ended.ok()).toBeTruthy();
  await expect(page.getByRole('status')).toHaveText('Your session has ended. Please sign in again.', { timeout: 15_000 });
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  await context.close();
});

test('tabs: signing in as someone else in this browser resets the other tabs at once', async ({ browser, baseURL, request }) => {
  const [alice, bob] = [uniqueName('alice'), uniqueName('bob')];
  expect((await request.post('/api/register', { form: { username: bob, password: PASSWORD } })).status()).toBe(200);
  const context = await browser.newContext({ baseURL });
  const tab = await context.newPage();
  await openApp(tab);
  await signUp(tab, alice);
  await live(tab);
  await watchForReset(tab);

  // Another request of this browser (it shares the cookie jar) signs in as bob over alice's
  // session: a form post in another window, a script, another tab.
  const actedAt = Date.now();
  const response = await context.request.post('/api/login', { form: { username: bob, password: PASSWORD } });
  expect(response.status()).toBe(200);
  await expectReset(
    tab,
    'You signed in as another user in another tab or window, so this page was reset.',
    actedAt,
    'tab, user switch',
  );
  await expect(tab.getByText(`Signed in as ${alice}`)).toHaveCount(0);
  await context.close();
});

test('back button: a page shown again from the back/forward cache checks its session at once', async ({ browser, baseURL }) => {
  // What the browser does when Back restores a cached page: it fires `pageshow` with `persisted`
  // on the page as it was. Chromium keeps no `Cache-Control: no-store` page in that cache unless
  // a field trial allows it (notRestoredReasons: "response-cache-control-no-store"), and Playwright
  // turns the cache off, so the test fires the event itself, on a page that cannot hear of the end
  // any other way: its event stream is blocked and its retries are seconds apart by then.
  const username = uniqueName('bfc');
  const laptop = await device(browser, baseURL);
  await signUp(laptop.page, username);
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  await page.route('**/api/events', (route) => route.abort());
  await openApp(page);
  await signIn(page, username);
  await watchForReset(page);
  await page.waitForTimeout(3_500);

  await laptop.page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await expect(laptop.page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  const shownAt = await page.evaluate(() => {
    const at = Date.now();
    window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }));
    return at;
  });
  await expectReset(page, 'Your session has ended. Please sign in again.', shownAt, 'back/forward cache, restored');
  await expect(page.getByText(`Signed in as ${username}`)).toHaveCount(0);
  await laptop.context.close();
  await context.close();
});
