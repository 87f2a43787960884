// Passkeys in Chromium with its virtual authenticator (the CDP `WebAuthn` domain): a real
// authenticator in the browser, real keys and signatures, nothing of the server faked. These run
// in the secure harness (scripts/e2e-secure.sh): the release build with COOKIE_SECURE=true on
// http://localhost, since WebAuthn refuses IP addresses as relying party ids. That server's
// STEP_UP_MAX_AGE is short, so one test can outlive it.
import type { BrowserContext, CDPSession, Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { PASSWORD, openApp, sessionList, signIn, signUp, uniqueName } from './helpers';

/** The harness's fresh-proof window (STEP_UP_MAX_AGE in scripts/e2e-secure.sh), in seconds. */
const STEP_UP_SECONDS = 10;

/** A platform authenticator with resident keys and user verification, approving every prompt. */
async function authenticator(page: Page): Promise<{ cdp: CDPSession; id: string }> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}

/** A device: a browser profile of its own with an authenticator of its own. */
async function device(browser: import('@playwright/test').Browser, baseURL?: string) {
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  const auth = await authenticator(page);
  await openApp(page);
  return { context, page, auth };
}

/** Copies the passkeys of one authenticator into another: the same passkey synced to a second
 *  device. */
async function sync(from: { cdp: CDPSession; id: string }, to: { cdp: CDPSession; id: string }) {
  const { credentials } = await from.cdp.send('WebAuthn.getCredentials', { authenticatorId: from.id });
  for (const credential of credentials) {
    await to.cdp.send('WebAuthn.addCredential', { authenticatorId: to.id, credential });
  }
  return credentials.length;
}

async function addPasskey(page: Page, name: string) {
  await page.getByLabel('Name for a new passkey').fill(name);
  await page.getByRole('button', { name: 'Add a passkey' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Passkey added' })).toBeVisible();
  await expect(page.getByRole('list', { name: 'Passkeys' }).getByRole('listitem')).toHaveCount(1);
}

async function signOut(page: Page) {
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
}

test('@secure add a passkey, then sign in with it by the button and by autofill', async ({ browser, baseURL }) => {
  const username = uniqueName('pk');
  const laptop = await device(browser, baseURL);
  await signUp(laptop.page, username);
  await addPasskey(laptop.page, 'Test laptop');
  const item = laptop.page.getByRole('list', { name: 'Passkeys' }).getByRole('listitem');
  await expect(item.getByLabel('Name of this passkey')).toHaveValue('Test laptop');
  await expect(item).toContainText('last used never');

  // The button: no name typed. No reload: the marker survives.
  await signOut(laptop.page);
  await laptop.page.evaluate(() => ((window as any).__signoffMarker = 'still here'));
  await laptop.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(laptop.page.getByText(`Signed in as ${username}`)).toBeVisible();
  expect(await laptop.page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
  await expect(sessionList(laptop.page).getByText(/with a passkey \(Test laptop\)/)).toBeVisible();

  // Autofill: the sign-in form's username field offers the passkey (conditional mediation) once
  // it has focus; Chromium's virtual authenticator answers the pending request as a person
  // picking the passkey would. Until then the signed-out page holds no session cookie.
  await signOut(laptop.page);
  await laptop.page.reload();
  await expect(laptop.page.locator('body[data-hydrated="true"]')).toHaveCount(1);
  expect((await laptop.context.cookies()).filter((c) => c.name.includes('signoff_session'))).toEqual([]);
  const field = laptop.page.getByRole('form', { name: 'Sign in' }).getByLabel('Username');
  await expect(field).toHaveAttribute('autocomplete', 'username webauthn');
  await field.click();
  await expect(laptop.page.getByText(`Signed in as ${username}`)).toBeVisible();
  await expect(laptop.page.getByRole('list', { name: 'Recent activity' }).getByText('Signed in with a passkey').first()).toBeVisible();
  await laptop.context.close();
});

test('@secure removing a passkey on one device resets the page signed in with it on another', async ({ browser, baseURL }) => {
  const username = uniqueName('pkr');
  const laptop = await device(browser, baseURL);
  await signUp(laptop.page, username);
  await addPasskey(laptop.page, 'Shared key');

  const phone = await device(browser, baseURL);
  expect(await sync(laptop.auth, phone.auth)).toBe(1);
  await phone.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await expect(phone.page.getByText(`Signed in as ${username}`)).toBeVisible();
  await phone.page.evaluate(() => ((window as any).__signoffMarker = 'still here'));

  await laptop.page.reload();
  await expect(sessionList(laptop.page).getByRole('listitem')).toHaveCount(2);
  const clicked = Date.now();
  await laptop.page.getByRole('button', { name: 'Remove passkey Shared key' }).click();
  await expect(phone.page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  console.log(`passkey removed → the other page reset: ${Date.now() - clicked} ms`);
  await expect(phone.page.getByRole('status').first()).toHaveText('Signed out: the passkey “Shared key” was removed.');
  expect(await phone.page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
  // The remover stays signed in, and its list is one session and no passkey.
  await expect(laptop.page.getByText(`Signed in as ${username}`)).toBeVisible();
  await expect(laptop.page.getByRole('list', { name: 'Passkeys' }).getByRole('listitem')).toHaveCount(0);
  await expect(sessionList(laptop.page).getByRole('listitem')).toHaveCount(1);
  await phone.context.close();
  await laptop.context.close();
});

test('@secure an account with a passkey only, and a stale session asked to confirm with it before a change', async ({ browser, baseURL }) => {
  test.setTimeout(90_000);
  const username = uniqueName('pko');
  const phone = await device(browser, baseURL);
  const create = phone.page.getByRole('form', { name: 'Create account' });
  await create.getByLabel('Username').fill(username);
  await create.getByRole("button", { name: "Sign up with a passkey" }).click();
  await expect(phone.page.getByText(`Signed in as ${username}`)).toBeVisible();
  // No password: the Security section offers to set one.
  await expect(phone.page.getByRole('form', { name: 'Set a password' })).toBeVisible();
  await expect(phone.page.getByRole('list', { name: 'Passkeys' }).getByRole('listitem')).toHaveCount(1);

  // Its only way in cannot be removed.
  await phone.page.getByRole('button', { name: /^Remove passkey / }).click();
  await expect(phone.page.getByRole('alert').filter({ hasText: 'only way in' })).toBeVisible();

  // Outlive the fresh-proof window: use does not renew it. Then the same removal asks "Confirm
  // it's you"; the passkey confirms (no password field for an account without one), and the
  // removal carries on by itself, to the server's answer: still the only way in.
  await phone.page.waitForTimeout((STEP_UP_SECONDS + 1) * 1000);
  await phone.page.reload();
  await phone.page.getByRole('button', { name: /^Remove passkey / }).click();
  const prompt = phone.page.getByRole('group', { name: "Confirm it's you" });
  await expect(prompt).toBeVisible();
  await expect(prompt.getByRole('heading', { name: "Confirm it's you" })).toBeFocused();
  await expect(prompt.getByLabel('Your password')).toHaveCount(0);
  await prompt.getByRole('button', { name: 'Use a passkey' }).click();
  await expect(prompt).toBeHidden();
  await expect(phone.page.getByRole('alert').filter({ hasText: 'only way in' })).toBeVisible();
  await expect(phone.page.getByRole('list', { name: 'Passkeys' }).getByRole('listitem')).toHaveCount(1);

  // A first password, once the proof is stale again: the prompt, the passkey, and the password
  // is set with nothing typed twice.
  await phone.page.waitForTimeout((STEP_UP_SECONDS + 1) * 1000);
  const setPassword = phone.page.getByRole('form', { name: 'Set a password' });
  await setPassword.getByLabel('New password').fill(PASSWORD);
  await setPassword.getByRole('button', { name: 'Set password' }).click();
  await expect(prompt).toBeVisible();
  await prompt.getByRole('button', { name: 'Use a passkey' }).click();
  await expect(prompt).toBeHidden();
  await expect(phone.page.getByText('Password set. You can sign in with it now.')).toBeVisible();
  // The password works, on a device with no passkey at all.
  const laptop = await browser.newContext({ baseURL });
  const laptopPage = await laptop.newPage();
  await openApp(laptopPage);
  await signIn(laptopPage, username);
  await laptop.close();
  await phone.context.close();
});

test('@secure a password account confirms with its password, then the change carries on', async ({ browser, baseURL }) => {
  test.setTimeout(60_000);
  const username = uniqueName('pks');
  const laptop = await device(browser, baseURL);
  await signUp(laptop.page, username);
  await laptop.page.waitForTimeout((STEP_UP_SECONDS + 1) * 1000);
  await laptop.page.getByLabel('Name for a new passkey').fill('After confirming');
  await laptop.page.getByRole('button', { name: 'Add a passkey' }).click();
  const prompt = laptop.page.getByRole('group', { name: "Confirm it's you" });
  await expect(prompt).toBeVisible();
  await prompt.getByLabel('Your password').fill('not the password');
  await prompt.getByRole('button', { name: 'Confirm', exact: true }).click();
  await expect(prompt.getByRole('alert')).toHaveText('Your current password is not correct.');
  await prompt.getByLabel('Your password').fill(PASSWORD);
  await prompt.getByRole('button', { name: 'Confirm', exact: true }).click();
  await expect(prompt).toBeHidden();
  await expect(laptop.page.getByRole('list', { name: 'Passkeys' }).getByRole('listitem')).toHaveCount(1);
  await expect(laptop.page.getByRole('list', { name: 'Passkeys' }).getByLabel('Name of this passkey')).toHaveValue('After confirming');
  await laptop.context.close();
});
