import { expect, type Page } from '@playwright/test';

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
