// E-mail address and "Forgot your password?" in Chromium, on the release build, with the test
// SMTP server beside the app (scripts/with-smtp.sh writes each mail it receives to
// SIGNOFF_MAIL_SPOOL). A reset ends every session: a page signed in elsewhere resets by itself.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { PASSWORD, device, signIn, signUp, uniqueName } from './helpers';

const spool = process.env.SIGNOFF_MAIL_SPOOL;
const NEW_PASSWORD = 'a fresh passphrase after the reset';

test.skip(!spool, 'needs the test SMTP server (make e2e runs it)');

type Mail = { rcpt_tos: string[]; data: string };

/** Every mail received so far. */
function mails(): Mail[] {
  return readdirSync(spool!)
    .filter((name) => name.endsWith('.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(join(spool!, name), 'utf-8')) as Mail);
}

/** The quoted-printable body undone (soft breaks, escapes). */
function decoded(mail: Mail): string {
  return mail.data
    .replace(/=\r\n/g, '')
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Waits for a mail to `to` whose subject is `subject`, and returns the path of its link. */
async function linkIn(to: string, subject: string): Promise<string> {
  let found: Mail | undefined;
  await expect
    .poll(() => {
      found = mails().find((mail) => mail.rcpt_tos.includes(to) && mail.data.includes(`Subject: ${subject}`));
      return !!found;
    })
    .toBe(true);
  const match = decoded(found!).match(/https?:\/\/[^/\s]+(\/[a-z-]+\?token=[A-Za-z0-9_-]{43})/);
  expect(match, 'a link in the mail').not.toBeNull();
  return match![1];
}

/** Adds and confirms `address` for the account signed in on `page`. */
async function confirmAddress(page: Page, address: string) {
  await page.getByRole('link', { name: 'Add or change your e-mail address' }).click();
  await expect(page.getByRole('heading', { name: 'Your e-mail address' })).toBeVisible();
  await page.getByLabel('E-mail address').fill(address);
  await page.getByLabel('Current password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Send a confirmation link' }).click();
  await expect(page.getByRole('status')).toContainText('A link to confirm the address is on its way');
  await page.goto(await linkIn(address, 'Confirm your e-mail address'));
  await page.getByRole('button', { name: 'Confirm the address' }).click();
  await expect(page.getByRole('status')).toContainText(`${address} is your account's e-mail address now`);
}

test('forgot password: mail, link, new password; a page signed in elsewhere resets by itself', async ({ browser, baseURL }) => {
  const username = uniqueName('rst');
  const address = `${username}@example.com`;
  const owner = await device(browser, baseURL);
  await signUp(owner.page, username);
  await confirmAddress(owner.page, address);

  // Signed in on another device, page open and live.
  const other = await device(browser, baseURL);
  await signIn(other.page, username);
  await other.page.evaluate(() => ((window as any).__signoffMarker = 'still here'));

  // Someone who forgot it, on a third browser.
  const forgetful = await device(browser, baseURL);
  await forgetful.page.getByRole('link', { name: 'Forgot your password?' }).click();
  await forgetful.page.getByLabel('Username or e-mail address').fill(username);
  await forgetful.page.getByRole('button', { name: 'Send the link' }).click();
  await expect(forgetful.page.getByRole('heading', { name: 'Check your mail' })).toBeVisible();
  await forgetful.page.goto(await linkIn(address, 'Reset your password'));
  await forgetful.page.getByLabel('New password').fill(NEW_PASSWORD);
  const started = Date.now();
  await forgetful.page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(forgetful.page.getByText(`Signed in as ${username}`)).toBeVisible();

  // The other page: signed out, told why, without a reload.
  await expect(other.page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  await expect(other.page.getByRole('status')).toHaveText(
    'Your password was reset, so every session was signed out. Please sign in again.',
  );
  console.log(`reset → the other page reset: ${Date.now() - started} ms (includes the sign-in page load)`);
  expect(await other.page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');

  // The old password no longer works; the new one does.
  const form = other.page.getByRole('form', { name: 'Sign in' });
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill(PASSWORD);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await expect(form.getByRole('alert')).toBeVisible();
  await signIn(other.page, username, NEW_PASSWORD);

  // The notice reached the address.
  await linkIn(address, 'Reset your password'); // still there
  await expect.poll(() => mails().some((mail) => mail.rcpt_tos.includes(address) && mail.data.includes('Subject: Your password was reset'))).toBe(true);
  for (const d of [owner, other, forgetful]) await d.context.close();
});

test('forgot password without JavaScript: plain forms all the way', async ({ browser, baseURL }) => {
  const username = uniqueName('rsn');
  const address = `${username}@example.com`;
  const owner = await device(browser, baseURL);
  await signUp(owner.page, username);
  await confirmAddress(owner.page, address);
  await owner.context.close();

  const context = await browser.newContext({ baseURL, javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto('/');
  await page.getByRole('link', { name: 'Forgot your password?' }).click();
  await page.getByLabel('Username or e-mail address').fill(address);
  await page.getByRole('button', { name: 'Send the link' }).click();
  await expect(page.getByRole('heading', { name: 'Check your mail' })).toBeVisible();
  const link = await linkIn(address, 'Reset your password');
  await page.goto(link);
  // A password the rules refuse: the same form again, with why.
  await page.getByLabel('New password').fill('password');
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page.getByRole('alert')).toBeVisible();
  await page.getByLabel('New password').fill(NEW_PASSWORD);
  await page.getByRole('button', { name: 'Set the new password' }).click();
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  // The link worked once.
  await page.goto(link);
  await expect(page.getByRole('heading', { name: 'This link does not work' })).toBeVisible();
  await context.close();
});
