// What the console's browser tests share: Debian's Chromium driven by
// playwright-core, waiting for a condition, and the light and dark
// screenshots in docs/console/.
import { existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before } from "node:test";

import { Riffle } from "./harness.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, "..", "..");
export const CONSOLE = join(ROOT, "crates", "riffle-server", "console");
export const SHOTS = join(ROOT, "docs", "console");
export const CHROMIUM = "/usr/bin/chromium";
/** A `skip` reason for node:test when there is no browser. */
export const skip = !existsSync(CHROMIUM) && `${CHROMIUM} is missing (scripts/test installs Debian's chromium)`;

export async function launch() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/** Waits until `fn` returns a truthy value (or throws with the last value). */
export async function until(fn, what, ms = 15000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
}

/** Light and dark screenshots of the page as it is. */
export async function shoot(page, name, fullPage = false) {
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await sleep(150);
    await page.screenshot({ path: join(SHOTS, `${name}-${scheme}.png`), fullPage });
  }
  await page.emulateMedia({ colorScheme: "light" });
}

/**
 * A server started with `args` for the enclosing describe, its Kinesis
 * client (`sdk`), a browser and a page: fields of the returned object once
 * `before` has run.
 */
export function pageFixture({ args = [], viewport = { width: 1280, height: 860 } } = {}) {
  const f = {};
  before(async () => {
    f.server = await Riffle.start({ args });
    f.sdk = f.server.client();
    f.browser = await launch();
    f.page = await f.browser.newPage({ viewport });
  });
  after(async () => {
    await f.browser?.close();
    await f.server?.stop();
  });
  return f;
}
