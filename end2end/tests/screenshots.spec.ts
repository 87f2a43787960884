import { expect, test } from './fixtures';
import path from 'node:path';
import { PASSWORD, fillCredentials, openApp, uniqueName } from './helpers';

// Screenshots of each state for the README. `make screenshots` sets SIGNOFF_SCREENSHOTS=docs and
// they are written to docs/screenshots/; otherwise they go to test-results/ and are thrown away.
const dir = process.env.SIGNOFF_SCREENSHOTS === 'docs'
  ? path.join(__dirname, '..', '..', 'docs', 'screenshots')
  : path.join(__dirname, '..', 'test-results', 'screenshots');

test('screenshots of the signed-out, signed-in and security views', async ({ browser, baseURL }) => {
  const username = process.env.SIGNOFF_SCREENSHOTS === 'docs' ? 'ada' : uniqueName('shot');
  const context = await browser.newContext({ baseURL, viewport: { width: 960, height: 720 } });
  const page = await context.newPage();
  await openApp(page);
  await page.screenshot({ path: path.join(dir, 'signed-out.png') });

  // A second device, so the session list has something to revoke.
  const other = await browser.newContext({ baseURL });
  const otherPage = await other.newPage();
  await openApp(otherPage);
  const create = await fillCredentials(otherPage, 'Create account', username);
  await create.getByRole('button', { name: 'Create account' }).click();
  await expect(otherPage.getByText(`Signed in as ${username}`)).toBeVisible();

  const signIn = await fillCredentials(page, 'Sign in', username, PASSWORD);
  await signIn.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
  await expect(page.getByRole('list', { name: 'Your sessions' }).getByRole('listitem')).toHaveCount(2);
  await page.screenshot({ path: path.join(dir, 'signed-in.png') });
  await page.getByRole('heading', { name: 'Security' }).scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(dir, 'security.png'), fullPage: true });
  await other.close();
  await context.close();
});
