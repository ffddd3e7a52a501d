// Headless Chromium for the page tests (Debian's chromium through playwright-core, as the chart and
// serve pages are opened by users): one place for the executable and its flags.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Debian's chromium, which scripts/setup.sh installs. */
export const CHROMIUM = '/usr/bin/chromium';

/** Whether the browser tests run: where Chromium is installed, and always in CI (where its absence is a failure). */
export const runBrowser = existsSync(CHROMIUM) || process.env.CI === 'true';

/** Starts headless Chromium with no network services of its own (no updates, sync or QUIC). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
