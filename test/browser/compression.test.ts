// permessage-deflate with Chromium as the client: the browser negotiates it by itself; large
// channel events arrive intact in a fraction of the bytes.
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProtocastServer } from "protocast/node";
import { EVENTS, PATTERN, REPEAT, compressionServer } from "../support/compression-server.js";
import type { CompressionResult } from "./pages/compression-page.js";
import { bundlePage, launchChromium, skipBrowser } from "./support.js";

describe.skipIf(skipBrowser)("permessage-deflate in Chromium", () => {
  let server: ProtocastServer;
  let bytesWritten: () => number;
  let browser: Browser | undefined;
  let base = "";

  beforeAll(async () => {
    const script = await bundlePage("compression-page");
    const http = createHttpServer((req, res) => {
      if (server.handleHttp(req, res)) return;
      if (req.url === "/app.js") res.writeHead(200, { "content-type": "text/javascript" }).end(script);
      else res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><script type="module" src="/app.js"></script>');
    });
    ({ server, bytesWritten } = compressionServer({ http, compression: true }));
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close({ deadlineMs: 0 });
    await new Promise((r) => server?.http.close(r));
  });

  it("the browser gets every large event intact, compressed", async () => {
    const page = await browser!.newPage();
    const url = `ws${base.slice(4)}/protocast`;
    await page.goto(`${base}/?url=${encodeURIComponent(url)}&events=${EVENTS}&repeat=${REPEAT}&pattern=${encodeURIComponent(PATTERN)}`);
    await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, undefined, { timeout: 20_000 });
    const r = (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as CompressionResult;
    expect(r).toEqual({ count: EVENTS, correct: true, reply: "published" });
    const raw = EVENTS * PATTERN.length * REPEAT;
    const sent = bytesWritten();
    console.log(`Chromium: ${EVENTS} events of ${PATTERN.length * REPEAT} bytes took ${sent} bytes on the wire (${(raw / sent).toFixed(1)}x smaller)`);
    expect(sent).toBeLessThan(raw / 5);
    await page.close();
  });
});
