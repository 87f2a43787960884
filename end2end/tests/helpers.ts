import { expect, type Browser, type BrowserContext, type Page } from '@playwright/test';

export const PASSWORD = 'correct horse battery staple';
export const COOKIE = 'signoff_session';

/** A username no earlier run has taken (the e2e database is reused across runs). */
export function uniqueName(prefix: string): string {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Opens the app and waits until the wasm has hydrated the page (before that, clicks would
 *  submit the forms the old-fashioned way). */
export async function openApp(page: Page) {
  await page.goto('/');
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}

export async function fillCredentials(page: Page, form: 'Sign in' | 'Create account', username: string, password = PASSWORD) {
  const scope = page.getByRole('form', { name: form });
  await scope.getByLabel('Username').fill(username);
  await scope.getByLabel('Password').fill(password);
  return scope;
}

/** A fresh browser profile (its own cookie jar): a second device. */
export async function device(browser: Browser, baseURL: string | undefined): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL });
  const page = await context.newPage();
  await openApp(page);
  return { context, page };
}

export async function signUp(page: Page, username: string) {
  const form = await fillCredentials(page, 'Create account', username);
  await form.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
}

export async function signIn(page: Page, username: string, password = PASSWORD) {
  const form = await fillCredentials(page, 'Sign in', username, password);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText(`Signed in as ${username}`)).toBeVisible();
}

export async function cookieOf(context: BrowserContext) {
  return (await context.cookies()).find((c) => c.name === COOKIE);
}

export const sessionList = (page: Page) => page.getByRole('list', { name: 'Your sessions' });
