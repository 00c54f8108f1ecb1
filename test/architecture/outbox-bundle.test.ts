// The outbox's code reaches a browser bundle only when the page makes an outbox store: a client
// without one (a call, a channel, a direct event) leaves it out, a page with indexedDbOutbox()
// has it. Bundled with esbuild, minified, as bench/README.md's browser-bundle row does.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bundleBrowser } from "../../bench/lib/bundle.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tsconfig = fileURLToPath(new URL("../../tsconfig.json", import.meta.url));
const OWN = /(^|\/)runtime\//;
const ENGINE = /(^|\/)runtime\/client\/outbox\.ts$/;

describe("the outbox in a browser bundle", () => {
  it("is left out of a client that configures none", async () => {
    const bundle = await bundleBrowser("bench/scenarios/bundle/protocast-client.ts", root, OWN, tsconfig);
    expect(bundle.inputs.some((p) => /runtime\/client\/connection\.ts$/.test(p))).toBe(true);
    expect(bundle.inputs.filter((p) => ENGINE.test(p) || /outbox-(store|indexeddb|memory)\.ts$/.test(p))).toEqual([]);
  });

  it("comes with indexedDbOutbox()", async () => {
    const bundle = await bundleBrowser("test/browser/pages/outbox-page.ts", root, OWN, tsconfig);
    expect(bundle.inputs.filter((p) => ENGINE.test(p))).toHaveLength(1);
  });
});
