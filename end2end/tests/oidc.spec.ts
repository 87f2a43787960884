import { createPrivateKey, createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { request as apiRequest, type Browser, type BrowserContext, type Page } from '@playwright/test';

import { expect, test } from './fixtures';
import { PASSWORD, signUp, uniqueName } from './helpers';

// Single sign-on against a real OpenID Provider (scripts/idp: npm oidc-provider), run by
// scripts/e2e-oidc.sh: instances A (SIGNOFF_URL) and B (SIGNOFF_URL_B) of the release build
// share one PostgreSQL database; the provider (IDP_URL) calls A's back-channel logout endpoint.
// Tagged @oidc: the main suite (one SQLite instance, no provider) leaves these out.

const A = process.env.SIGNOFF_URL ?? 'http://127.0.0.1:3201';
const B = process.env.SIGNOFF_URL_B ?? 'http://127.0.0.1:3202';
const IDP = process.env.IDP_URL ?? 'http://localhost:3299';
const CLIENT_ID = process.env.OIDC_CLIENT_ID ?? 'signoff-e2e';
const PROVIDER = 'Test IdP';
const BACKCHANNEL = `${A}/api/oidc/idp/backchannel-logout`;
const NOTICE = `You were signed out by ${PROVIDER}. Please sign in again.`;
/** The harness's fresh-proof window (STEP_UP_MAX_AGE in scripts/e2e-oidc.sh), in seconds. */
const STEP_UP_SECONDS = 10;
// As in screenshots.spec: docs/screenshots/ for `make screenshots`, test-results/ otherwise.
const SHOTS = process.env.SIGNOFF_SCREENSHOTS === 'docs'
  ? path.join(__dirname, '..', '..', 'docs', 'screenshots')
  : path.join(__dirname, '..', 'test-results', 'screenshots');

/** Signs in with the provider from the app's page, as `username` there. */
async function signInWithProvider(page: Page, base: string, username: string) {
  await page.goto(base);
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  await page.getByRole('button', { name: `Sign in with ${PROVIDER}` }).click();
  await expect(page).toHaveURL(new RegExp(`^${IDP}/interaction/`));
  await page.getByLabel('Username').fill(username);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(`${base}/`);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

/** Records on `window` when the signed-out page appears, and leaves a marker that survives only
 *  if nothing reloads or navigates. */
async function watchForReset(page: Page) {
  await expect(page.locator('body[data-live="connected"]')).toHaveCount(1);
  await page.evaluate(() => {
    const w = window as any;
    w.__signoffMarker = 'still here';
    w.__resetAt = undefined;
    new MutationObserver(() => {
      if (w.__resetAt === undefined && document.getElementById('sign-in-username')) {
        w.__resetAt = Date.now();
      }
    }).observe(document.body, { childList: true, subtree: true });
  });
}

/** Waits for the reset with the provider's notice, without a reload; ms after `since`. */
async function resetLatency(page: Page, since: number): Promise<number> {
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByRole('status').filter({ hasText: NOTICE })).toBeVisible();
  expect(await page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
  return (await page.evaluate(() => (window as any).__resetAt as number)) - since;
}

/** The provider's signing key (the test script made it and gave it to the provider). */
function providerKey() {
  const jwk = JSON.parse(readFileSync(process.env.IDP_KEY_FILE ?? '', 'utf8'));
  return { jwk, key: createPrivateKey({ key: jwk, format: 'jwk' }) };
}

const b64 = (value: object | Buffer) =>
  (Buffer.isBuffer(value) ? value : Buffer.from(JSON.stringify(value))).toString('base64url');

/** A logout token for `sub`, signed RS256 with `key` (the provider's unless given); `claims`
 *  change or remove (undefined) the proper ones. */
function logoutToken(sub: string, claims: Record<string, unknown> = {}, key = providerKey()) {
  const now = Math.floor(Date.now() / 1000);
  const body: Record<string, unknown> = {
    iss: IDP,
    aud: CLIENT_ID,
    iat: now,
    exp: now + 120,
    jti: randomUUID(),
    sub,
    events: { 'http://schemas.openid.net/event/backchannel-logout': {} },
    ...claims,
  };
  for (const name of Object.keys(body)) if (body[name] === undefined) delete body[name];
  const input = `${b64({ alg: 'RS256', typ: 'logout+jwt', kid: key.jwk.kid })}.${b64(body)}`;
  const signature = createSign('RSA-SHA256').update(input).sign(key.key);
  return `${input}.${b64(signature)}`;
}

async function postLogoutToken(token: string) {
  const api = await apiRequest.newContext();
  const response = await api.post(BACKCHANNEL, { form: { logout_token: token } });
  const result = { status: response.status(), body: await response.json().catch(() => null), cacheControl: response.headers()['cache-control'] };
  await api.dispose();
  return result;
}

async function anotherContext(browser: Browser, from: BrowserContext) {
  return browser.newContext({ storageState: await from.storageState() });
}

test.describe('single sign-on @oidc', () => {
  test('signing out at the provider resets the open pages on both instances within a second', async ({ browser, page, context }) => {
    const username = process.env.SIGNOFF_SCREENSHOTS === 'docs' ? 'grace' : uniqueName('sso');
    await page.setViewportSize({ width: 960, height: 720 });
    await page.goto(A);
    await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
    await page.screenshot({ path: path.join(SHOTS, 'sso-signed-out.png'), fullPage: true });
    await signInWithProvider(page, A, username);
    await page.screenshot({ path: path.join(SHOTS, 'sso-signed-in.png'), fullPage: true });
    // The same browser's page on instance B: the session is in the shared database.
    const pageB = await context.newPage();
    await pageB.goto(B);
    await expect(pageB.getByText(`Signed in as ${username}`)).toBeVisible();
    await expect(pageB.locator('body[data-hydrated="true"]')).toHaveCount(1);
    await expect(pageB.getByText(`Signed in with ${PROVIDER}`).first()).toBeVisible();
    await watchForReset(page);
    await watchForReset(pageB);

    // From another browser context holding the provider's session (another tab of the person,
    // at the provider): "Sign out".
    const elsewhere = await anotherContext(browser, context);
    const idpPage = await elsewhere.newPage();
    await idpPage.goto(`${IDP}/session/end`);
    const confirm = idpPage.getByRole('button', { name: 'Yes, sign me out' });
    await expect(confirm).toBeVisible();
    const actedAt = await confirm.evaluate((element) => {
      const at = Date.now();
      (element as HTMLElement).click();
      return at;
    });
    const onA = await resetLatency(page, actedAt);
    const onB = await resetLatency(pageB, actedAt);
    await page.screenshot({ path: path.join(SHOTS, 'sso-signed-out-by-provider.png') });
    console.log(`[oidc] provider logout → page reset: ${onA} ms on instance A (the one called), ${onB} ms on instance B`);
    expect(onA).toBeLessThan(1000);
    expect(onB).toBeLessThan(1000);
    await expect(idpPage.getByRole('heading', { name: 'Signed out of the test provider' })).toBeVisible();
    await elsewhere.close();
  });

  test('"Sign out of the provider too" ends the session here, then there, and lands signed out', async ({ page }) => {
    const username = uniqueName('rp');
    await signInWithProvider(page, A, username);
    await page.getByRole('button', { name: `Sign out of ${PROVIDER} too` }).click();
    await expect(page).toHaveURL(new RegExp(`^${IDP}/session/end`));
    // Signed out of Signoff before the provider's page even shows.
    const me = await (await apiRequest.newContext()).get(`${A}/api/me`, {
      headers: { cookie: (await page.context().cookies(A)).map((c) => `${c.name}=${c.value}`).join('; ') },
    });
    expect(await me.json()).toBeNull();
    await page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await expect(page).toHaveURL(`${A}/?signed-out`);
    await expect(page.getByText('You signed out.')).toBeVisible();
    await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
    // The provider's session ended too: signing in again asks who you are.
    await page.getByRole('button', { name: `Sign in with ${PROVIDER}` }).click();
    await expect(page.getByLabel('Username')).toBeVisible();
  });

  test('hostile logout tokens are refused and end nothing; a replay too', async ({ page }) => {
    const username = uniqueName('bad');
    await signInWithProvider(page, B, username);
    await watchForReset(page);
    const now = Math.floor(Date.now() / 1000);
    const other = { jwk: { kid: providerKey().jwk.kid }, key: foreignKey() };
    const cases: [string, string][] = [
      ['another audience', logoutToken(username, { aud: 'someone-else' })],
      ['a bad signature', logoutToken(username, {}, other)],
      ['expired', logoutToken(username, { iat: now - 200, exp: now - 100 })],
      ['with a nonce', logoutToken(username, { nonce: 'n' })],
    ];
    for (const [what, token] of cases) {
      const result = await postLogoutToken(token);
      expect(result.status, what).toBe(400);
      expect(result.body?.error, what).toBe('invalid_request');
      expect(result.cacheControl, what).toBe('no-store');
    }
    await page.waitForTimeout(1500);
    await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();

    // The proper token ends it, once.
    const token = logoutToken(username);
    const sent = Date.now();
    expect((await postLogoutToken(token)).status).toBe(200);
    console.log(`[oidc] back-channel token on A → page on B reset: ${await resetLatency(page, sent)} ms`);
    // The provider's own session was not ended by that token: signing in again goes straight
    // through (single sign-on), without the provider's login page.
    await page.getByRole('button', { name: `Sign in with ${PROVIDER}` }).click();
    await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
    await expect(page.locator('body[data-live="connected"]')).toHaveCount(1);
    const replay = await postLogoutToken(token);
    expect(replay.status).toBe(400);
    expect(replay.body?.error_description).toContain('already used');
    await page.waitForTimeout(1000);
    await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  });

  test('a stale session confirms it is you, then Link carries on to the provider, and Unlink ends the sessions signed in through it on the other instance', async ({ browser, page }) => {
    test.setTimeout(90_000);
    const username = uniqueName('lnk');
    const atProvider = uniqueName('idl');
    await page.goto(A);
    await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
    await signUp(page, username);
    const prompt = page.getByRole('group', { name: "Confirm it's you" });
    const confirm = async () => {
      await expect(prompt).toBeVisible();
      await prompt.getByLabel('Your password').fill(PASSWORD);
      await prompt.getByRole('button', { name: 'Confirm', exact: true }).click();
    };

    // Stale (using the session does not renew the proof): Link asks first, then leaves for the
    // provider by itself, and comes back linked.
    await page.waitForTimeout((STEP_UP_SECONDS + 1) * 1000);
    await page.getByRole('button', { name: `Link ${PROVIDER}` }).click();
    await confirm();
    await expect(page).toHaveURL(new RegExp(`^${IDP}/interaction/`));
    await page.getByLabel('Username').fill(atProvider);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect(page).toHaveURL(`${A}/`);
    await expect(page.getByText(`${PROVIDER} · linked`)).toBeVisible();

    // Another device signs in through the provider, on instance B.
    const phone = await browser.newContext();
    const phonePage = await phone.newPage();
    await phonePage.goto(B);
    await expect(phonePage.locator('body[data-hydrated="true"]')).toHaveCount(1);
    await phonePage.getByRole('button', { name: `Sign in with ${PROVIDER}` }).click();
    await phonePage.getByLabel('Username').fill(atProvider);
    await phonePage.getByRole('button', { name: 'Continue' }).click();
    await expect(phonePage.getByText(`Signed in as ${username}`)).toBeVisible();
    await watchForReset(phonePage);

    // Stale again: Unlink asks, then carries on in the page, and the phone's page resets.
    await page.waitForTimeout((STEP_UP_SECONDS + 1) * 1000);
    await page.getByRole('button', { name: `Unlink ${PROVIDER}` }).click();
    await confirm();
    const confirmedAt = Date.now();
    await expect(page.getByRole('status').filter({ hasText: `${PROVIDER} unlinked. Sessions signed in with it were signed out.` })).toBeVisible();
    await expect(page.getByRole('button', { name: `Link ${PROVIDER}` })).toBeVisible();
    await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
    await expect(phonePage.getByRole('form', { name: 'Sign in' })).toBeVisible();
    await expect(phonePage.getByRole('status').filter({ hasText: `Signed out: ${PROVIDER} was unlinked from your account.` })).toBeVisible();
    expect(await phonePage.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
    const reset = (await phonePage.evaluate(() => (window as any).__resetAt as number)) - confirmedAt;
    console.log(`[oidc] unlinked on instance A → the page on B reset: ${reset} ms after Confirm`);
    await phone.close();
  });
});

/** A key that is not the provider's. */
function foreignKey() {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}
