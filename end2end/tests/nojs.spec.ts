import { expect, test } from './fixtures';
import { COOKIE, PASSWORD, uniqueName } from './helpers';

// Progressive enhancement: with JavaScript off, every step is a native form post that lands back
// on the page (server/src/forms.rs). Chromium sends these posts with `Origin: null` (the page's
// Referrer-Policy is no-referrer) and `Sec-Fetch-Site: same-origin`: the cross-site guard must
// let them through.
test.use({ javaScriptEnabled: false });

test('without JavaScript: create an account, sign out, sign in again', async ({ page, context, request }) => {
  const username = uniqueName('nojs');
  const cookie = async () => (await context.cookies()).find((c) => c.name === COOKIE);

  await page.goto('/');
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();

  // A mistake first: the error is shown in its form, on the app's page.
  const create = page.getByRole('form', { name: 'Create account' });
  await create.getByLabel('Username').fill(username);
  await create.getByLabel('Password').fill('too short');
  await create.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(create.getByRole('alert')).toHaveText('Password must be at least 15 characters long.');
  expect(await cookie(), 'not signed in').toBeUndefined();

  // Create the account.
  await create.getByLabel('Username').fill(username);
  await create.getByLabel('Password').fill(PASSWORD);
  await create.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  const first = await cookie();
  expect(first, 'signed in by the form post').toBeDefined();

  // Sign out: the cookie leaves the jar, the server forgets the session, the page says so.
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page).toHaveURL(/\/\?signed-out$/);
  await expect(page.getByText('You signed out.')).toBeVisible();
  await expect(page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  expect(await cookie(), 'the browser forgot the cookie').toBeUndefined();
  const replay = await request.get('/api/me', { headers: { cookie: `${COOKIE}=${first!.value}` } });
  expect(await replay.json(), 'the session row is gone').toBeNull();

  // A wrong password, then the right one.
  const signIn = page.getByRole('form', { name: 'Sign in' });
  await signIn.getByLabel('Username').fill(username);
  await signIn.getByLabel('Password').fill('not the password at all');
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await expect(signIn.getByRole('alert')).toHaveText('Wrong username or password.');
  await signIn.getByLabel('Username').fill(username);
  await signIn.getByLabel('Password').fill(PASSWORD);
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  const second = await cookie();
  expect(second).toBeDefined();
  expect(second!.value).not.toBe(first!.value);
  // The error was shown once: reloading does not bring it back.
  await page.reload();
  await expect(page.getByRole('alert')).toHaveCount(0);
});
