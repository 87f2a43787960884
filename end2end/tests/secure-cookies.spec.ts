// The production cookie mode in Chromium (scripts/e2e-secure.sh): the release server with
// COOKIE_SECURE=true on http://localhost, a secure context where Chromium keeps `Secure` cookies.
// The session cookie is `__Host-signoff_session`, and every way it ends must make the browser
// forget it. Each flow runs twice: as served, and through a proxy that strips `Clear-Site-Data`
// (as some proxies and CDNs do, and as a browser that ignores the header behaves), which proves
// the removal `Set-Cookie` alone clears the cookie.
//
// The stripping is a real HTTP proxy, not Playwright's `route`: `route.fetch()` runs the request
// in Playwright's own client and applies its cookies to the context itself, so the browser's
// handling of the removal (which refuses a `__Host-` cookie without `Secure`) would not be tested.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext } from '@playwright/test';
import { expect, test } from './fixtures';
import { PASSWORD, openApp, sessionList, signIn, signUp, uniqueName } from './helpers';

const SESSION = '__Host-signoff_session';
const DEVICE = '__Host-signoff_device';
const FLASH = '__Host-signoff_flash';

/** An HTTP proxy in front of `target` that removes `Clear-Site-Data` from every response and
 *  passes everything else through untouched, streams included. */
async function strippingProxy(target: URL) {
  let stripped = 0;
  const server = http.createServer((request, response) => {
    const upstream = http.request(
      {
        host: target.hostname === 'localhost' ? '127.0.0.1' : target.hostname,
        port: target.port,
        method: request.method,
        path: request.url,
        headers: request.headers,
      },
      (answer) => {
        const headers = { ...answer.headers };
        if ('clear-site-data' in headers) {
          delete headers['clear-site-data'];
          stripped += 1;
        }
        response.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(response);
      },
    );
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://localhost:${port}`,
    stripped: () => stripped,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const cookie = async (context: BrowserContext, name: string) => (await context.cookies()).find((c) => c.name === name);

let proxy: Awaited<ReturnType<typeof strippingProxy>>;

test.beforeAll(async () => {
  // The config's baseURL (a test-scoped option, not available to this hook).
  const served = new URL(process.env.SIGNOFF_URL ?? 'http://127.0.0.1:3000');
  expect(served.hostname, 'a secure context: http://localhost').toBe('localhost');
  proxy = await strippingProxy(served);
});

test.afterAll(async () => {
  await proxy?.close();
});

for (const mode of ['as served', 'Clear-Site-Data stripped'] as const) {
  const strip = mode !== 'as served';
  const origin = (baseURL: string | undefined) => (strip ? proxy.url : baseURL!);
  const open = (browser: Browser, baseURL: string | undefined, javaScriptEnabled = true) =>
    browser.newContext({ baseURL: origin(baseURL), javaScriptEnabled });

  test(`secure mode, ${mode}: Sign out and Sign out everywhere remove the __Host- cookie @secure`, async ({ browser, baseURL }) => {
    const context = await open(browser, baseURL);
    const page = await context.newPage();
    const username = uniqueName('sec');
    await openApp(page);
    await signUp(page, username);
    const first = await cookie(context, SESSION);
    expect(first, 'a __Host- session cookie').toBeDefined();
    expect(first!.secure).toBe(true);
    expect(first!.httpOnly).toBe(true);
    expect(first!.sameSite).toBe('Lax');
    expect(first!.path).toBe('/');

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
    expect(await cookie(context, SESSION), 'the browser forgot the session cookie').toBeUndefined();

    // A sign-in makes this browser known to the account: the device cookie.
    await signIn(page, username);
    const second = await cookie(context, SESSION);
    expect(second).toBeDefined();
    expect(second!.value).not.toBe(first!.value);
    expect((await cookie(context, DEVICE))?.secure, 'the device cookie').toBe(true);
    const strippedBefore = proxy.stripped();
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
    expect(await cookie(context, SESSION), 'the browser forgot the session cookie').toBeUndefined();
    if (strip) {
      expect(proxy.stripped(), 'the proxy removed Clear-Site-Data').toBeGreaterThan(strippedBefore);
      // Nothing cleared the site's cookies wholesale: the removal alone did the work.
      expect(await cookie(context, DEVICE), 'Clear-Site-Data did not reach the browser').toBeDefined();
    } else {
      expect(await cookie(context, DEVICE), 'Clear-Site-Data cleared the rest').toBeUndefined();
    }

    await signIn(page, username);
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await expect(page.getByRole('status')).toHaveText('You signed out everywhere.');
    expect(await cookie(context, SESSION), 'Sign out everywhere removed the cookie').toBeUndefined();
    await context.close();
  });

  test(`secure mode, ${mode}: without JavaScript, sign-out and a form error leave no cookie behind @secure`, async ({ browser, baseURL }) => {
    const context = await open(browser, baseURL, false);
    const page = await context.newPage();
    const username = uniqueName('secnojs');
    await page.goto('/');
    const create = page.getByRole('form', { name: 'Create account' });

    // A form error travels in the __Host- flash cookie, and the page that shows it removes it.
    await create.getByLabel('Username').fill(username);
    await create.getByLabel('Password').fill('too short');
    await create.getByRole('button', { name: 'Create account' }).click();
    await expect(create.getByRole('alert')).toHaveText('Password must be at least 15 characters long.');
    expect(await cookie(context, FLASH), 'the flash was read once and removed').toBeUndefined();

    await create.getByLabel('Username').fill(username);
    await create.getByLabel('Password').fill(PASSWORD);
    await create.getByRole('button', { name: 'Create account' }).click();
    await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
    expect((await cookie(context, SESSION))?.secure).toBe(true);

    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await expect(page).toHaveURL(/\/\?signed-out$/);
    await expect(page.getByText('You signed out.')).toBeVisible();
    expect(await cookie(context, SESSION), 'the form sign-out removed the cookie').toBeUndefined();
    await context.close();
  });

  test(`secure mode, ${mode}: a revoked device forgets its cookie at its next request @secure`, async ({ browser, baseURL }) => {
    const username = uniqueName('secrev');
    const phone = await open(browser, baseURL);
    const phonePage = await phone.newPage();
    await openApp(phonePage);
    await signUp(phonePage, username);
    expect(await cookie(phone, SESSION)).toBeDefined();

    const laptop = await open(browser, baseURL);
    const laptopPage = await laptop.newPage();
    await openApp(laptopPage);
    await signIn(laptopPage, username);
    await expect(sessionList(laptopPage).getByRole('listitem')).toHaveCount(2);
    await sessionList(laptopPage).getByRole('button', { name: /^Sign out / }).click();
    await expect(sessionList(laptopPage).getByRole('listitem')).toHaveCount(1);

    // The phone's page hears of it and resets; its next request is answered with the removal.
    await expect(phonePage.getByRole('form', { name: 'Sign in' })).toBeVisible();
    await phonePage.reload();
    await expect(phonePage.getByRole('form', { name: 'Sign in' })).toBeVisible();
    expect(await cookie(phone, SESSION), 'the revoked session cookie left the phone').toBeUndefined();
    await phone.close();
    await laptop.close();
  });
}
