import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium package (scripts/test-env.sh installs it); tests never download a browser. */
export const CHROMIUM = process.env.PODFLEET_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags this machine needs: without the background-networking ones Chromium's own connections
 * fail on a closed network. Playwright adds a fresh temporary --user-data-dir to every launch.
 */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium driven over CDP by playwright-core. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium (apt-get install chromium)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
}
