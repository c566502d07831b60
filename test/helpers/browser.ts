// Headless Chromium for the console's tests: Debian's chromium (browsers cannot be downloaded here)
// driven by playwright-core. A missing browser fails the test; it never skips it.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './process.js';

export const CHROMIUM = process.env.EVENTBUS_TEST_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots: on every failure, and the overview's for docs/. */
export const ARTIFACTS = join(ROOT, 'dist-test', 'console-artifacts');

/**
 * Launches the browser with the flags this machine needs (no sandbox as root, no background
 * networking on a closed network); playwright gives it a fresh temporary profile.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install -y --no-install-recommends chromium; .ci/run does)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A screenshot of `page` under ARTIFACTS; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name.replace(/[^A-Za-z0-9_.-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * A subtest on `page` that saves a screenshot when it fails (an assertion or a throw), with the
 * page's console errors in the failure's diagnostics.
 */
export function pageTest(t: Test, name: string, page: () => Page, fn: (t: Test) => Promise<void>): void {
  t.test(name, async (t) => {
    const p = page();
    const errors: string[] = [];
    const onConsole = (m: { type(): string; text(): string }) => {
      if (m.type() === 'error') errors.push(m.text());
    };
    p.on('console', onConsole);
    const shoot = async () => {
      const file = await screenshot(p, `failed-${name}`).catch((err: unknown) => `(no screenshot: ${String(err)})`);
      t.comment(`screenshot: ${file}; page console errors: ${JSON.stringify(errors)}`);
    };
    try {
      await fn(t);
    } catch (err) {
      await shoot();
      throw err;
    } finally {
      p.off('console', onConsole);
    }
    if (!t.passing()) await shoot();
  });
}
