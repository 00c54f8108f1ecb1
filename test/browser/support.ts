import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium, type Browser, type Page } from "playwright-core";

/** Debian's Chromium, driven by playwright-core; never a downloaded browser. */
export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
export const IN_CI = process.env["CI"] === "true";
export const haveChromium = existsSync(CHROMIUM);
/** Outside CI a missing browser skips the browser tests, with this reason printed; in CI it fails them. */
export const skipBrowser = !haveChromium && !IN_CI;
if (skipBrowser) {
  console.warn(`browser tests skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
}

export function launchChromium(): Promise<Browser> {
  if (!haveChromium) throw new Error(`no Chromium at ${CHROMIUM}; in CI a missing browser is a failure`);
  return chromium.launch({
    executablePath: CHROMIUM,
    // Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export interface Shown {
  readonly id: string;
  readonly author: string;
  readonly text: string;
}

/** The messages a page shows, top to bottom. */
export function shownMessages(page: Page): Promise<Shown[]> {
  return page.$$eval("#messages li.message", (items) =>
    items.map((li) => ({
      id: (li as HTMLElement).dataset["messageId"] ?? "",
      author: (li as HTMLElement).dataset["author"] ?? "",
      text: li.querySelector(".text")?.textContent ?? "",
    })),
  );
}

/** Waits until the page shows this connection state. */
export function waitForState(page: Page, state: string, timeout = 15_000): Promise<unknown> {
  return page.waitForFunction((s) => document.getElementById("state")?.dataset["state"] === s, state, { timeout });
}

/**
 * Bundles a test page's script (test/browser/pages/<name>.ts) for Chromium, from source:
 * "protocast" resolves through tsconfig.json's paths to the runtime's browser entry.
 */
export async function bundlePage(name: string): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`./pages/${name}.ts`, import.meta.url))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)),
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}
