// Every test of the suite fails if any page it opened threw an uncaught error: a bundle that does
// not hydrate (the release build once failed at `WebAssembly.Table.set()` while the page still
// rendered) can never pass again. Specs import `test` and `expect` from here.
import { test as base, expect, type BrowserContext } from '@playwright/test';

const errors: string[] = [];

/** Records uncaught errors of every page of `context` (also the extra devices a test opens). */
export function watchErrors(context: BrowserContext) {
  context.on('weberror', (error) => errors.push(`${error.page()?.url() ?? '?'}: ${error.error().message}`));
}

export const test = base.extend<{ pageErrors: void }, { watchedBrowser: void }>({
  // Contexts a test opens itself (second devices, a JavaScript-off browser) are watched too.
  watchedBrowser: [
    async ({ browser }, use) => {
      const newContext = browser.newContext.bind(browser);
      browser.newContext = async (options) => {
        const context = await newContext(options);
        watchErrors(context);
        return context;
      };
      await use();
    },
    { scope: 'worker', auto: true },
  ],
  context: async ({ context }, use) => {
    watchErrors(context);
    await use(context);
  },
  pageErrors: [
    async ({}, use) => {
      errors.length = 0;
      await use();
      expect(errors, 'uncaught errors in the page').toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };
