import { expect, test } from './fixtures';
import { COOKIE, PASSWORD, cookieOf, device, fillCredentials, sessionList, signIn, signUp, uniqueName } from './helpers';

test('revoke another device from the Security section', async ({ browser, baseURL, request }) => {
  const username = uniqueName('rev');
  const phone = await device(browser, baseURL);
  await signUp(phone.page, username);
  const phoneCookie = await cookieOf(phone.context);

  const laptop = await device(browser, baseURL);
  await signIn(laptop.page, username);
  await expect(sessionList(laptop.page).getByRole('listitem')).toHaveCount(2);
  await expect(sessionList(laptop.page).getByText('This device')).toHaveCount(1);

  await laptop.page.evaluate(() => ((window as any).__signoffMarker = 'still here'));
  await sessionList(laptop.page).getByRole('button', { name: /^Sign out / }).click();
  await expect(sessionList(laptop.page).getByRole('listitem')).toHaveCount(1);
  await expect(laptop.page.getByText(`Signed in as ${username}`)).toBeVisible();
  expect(await laptop.page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');

  // The phone's session is gone on the server: its cookie is signed out, and so is its page
  // the next time it loads.
  const replay = await request.get('/api/me', { headers: { cookie: `${COOKIE}=${phoneCookie!.value}` } });
  expect(await replay.json()).toBeNull();
  await phone.page.reload();
  await expect(phone.page.getByRole('form', { name: 'Sign in' })).toBeVisible();

  // Recent activity shows what happened.
  await expect(laptop.page.getByRole('list', { name: 'Recent activity' })).toBeVisible();
  await laptop.page.reload();
  await expect(laptop.page.getByRole('list', { name: 'Recent activity' }).getByText('A session was signed out')).toBeVisible();
  await phone.context.close();
  await laptop.context.close();
});

test('sign out everywhere ends this and every other session, without a reload', async ({ browser, baseURL, request }) => {
  const username = uniqueName('all');
  const phone = await device(browser, baseURL);
  await signUp(phone.page, username);
  const laptop = await device(browser, baseURL);
  await signIn(laptop.page, username);
  const phoneCookie = await cookieOf(phone.context);
  const startUrl = laptop.page.url();
  await laptop.page.evaluate(() => ((window as any).__signoffMarker = 'still here'));

  await laptop.page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await expect(laptop.page.getByRole('form', { name: 'Sign in' })).toBeVisible();
  await expect(laptop.page.getByRole('status')).toHaveText('You signed out everywhere.');
  expect(await cookieOf(laptop.context)).toBeUndefined();
  expect(await laptop.page.evaluate(() => (window as any).__signoffMarker)).toBe('still here');
  expect(laptop.page.url()).toBe(startUrl);

  const replay = await request.get('/api/me', { headers: { cookie: `${COOKIE}=${phoneCookie!.value}` } });
  expect(await replay.json()).toBeNull();
  await phone.context.close();
  await laptop.context.close();
});

test('changing the password signs out the other devices and keeps this one', async ({ browser, baseURL, request }) => {
  const username = uniqueName('pw');
  const newPassword = 'a completely different passphrase';
  const phone = await device(browser, baseURL);
  await signUp(phone.page, username);
  const laptop = await device(browser, baseURL);
  await signIn(laptop.page, username);
  const phoneCookie = await cookieOf(phone.context);
  const laptopBefore = await cookieOf(laptop.context);

  const form = laptop.page.getByRole('form', { name: 'Change password' });
  // A wrong current password is refused inline.
  await form.getByLabel('Current password').fill('this is not the password');
  await form.getByLabel('New password').fill(newPassword);
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(form.getByRole('alert')).toHaveText('Your current password is not correct.');

  await form.getByLabel('Current password').fill(PASSWORD);
  await form.getByLabel('New password').fill(newPassword);
  await form.getByRole('button', { name: 'Change password' }).click();
  await expect(laptop.page.getByRole('status')).toHaveText('Password changed. Your other sessions were signed out.');
  await expect(laptop.page.getByText(`Signed in as ${username}`)).toBeVisible();
  await expect(sessionList(laptop.page).getByRole('listitem')).toHaveCount(1);
  const laptopAfter = await cookieOf(laptop.context);
  expect(laptopAfter!.value).not.toBe(laptopBefore!.value);

  const replay = await request.get('/api/me', { headers: { cookie: `${COOKIE}=${phoneCookie!.value}` } });
  expect(await replay.json()).toBeNull();

  // The new password is the one that works now.
  await laptop.page.getByRole('button', { name: 'Sign out', exact: true }).click();
  const wrong = await fillCredentials(laptop.page, 'Sign in', username, PASSWORD);
  await wrong.getByRole('button', { name: 'Sign in' }).click();
  await expect(wrong.getByRole('alert')).toHaveText('Wrong username or password.');
  await signIn(laptop.page, username, newPassword);
  await phone.context.close();
  await laptop.context.close();
});
