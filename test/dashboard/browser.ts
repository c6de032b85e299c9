// Browser tests drive Debian's chromium through playwright-core: no browser download, ever.
import { existsSync } from 'node:fs';
import type { Test } from 'tap';
import type { Browser } from 'playwright-core';

/** The system chromium (`apt-get install -y chromium`); STEM_CHROMIUM names another. */
export const CHROMIUM_PATH = process.env.STEM_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Launches the system chromium, headless. Missing: with CI=true the test fails; otherwise it is
 * skipped with a loud message. Returns undefined when the caller should stop.
 */
export async function launchChromium(t: Test): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM_PATH)) {
    const message = `chromium is missing at ${CHROMIUM_PATH}: apt-get install -y chromium (or set STEM_CHROMIUM)`;
    if (process.env.CI === 'true' || process.env.CI === '1') t.fail(message);
    else {
      console.error(`\n!!! SKIPPING the browser tests: ${message}\n`);
      await t.test(message, { skip: message }, async () => undefined);
    }
    return undefined;
  }
  const { chromium } = await import('playwright-core');
  // The sessions and CI run as root, where chromium needs --no-sandbox.
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox', '--disable-gpu'] });
  t.teardown(() => browser.close());
  return browser;
}

/** True when screenshots are wanted (STEM_SCREENSHOTS=1: `npm run screenshots`). */
export const SCREENSHOTS = process.env.STEM_SCREENSHOTS === '1';
