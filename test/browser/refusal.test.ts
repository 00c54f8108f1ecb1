import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, createServer, type Principal, type ProtocastServer } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { launchChromium, skipBrowser, bundlePage } from "./support.js";
import type { PageEvent } from "./pages/refusal-page.js";

// A browser cannot read the HTTP status of a refused upgrade, so the server refuses after 101
// with a close code and reason (PROTOCOL.md 2.4). In real Chromium: a bad token must surface as
// an UNAUTHENTICATED error event within a second, end the connection, and start no reconnect loop.

describe.skipIf(skipBrowser)("a refused connection in Chromium", () => {
  let http: Server;
  let server: ProtocastServer;
  let browser: Browser | undefined;
  let base = "";
  let upgrades = 0;
  let streams = 0;

  beforeAll(async () => {
    const script = await bundlePage("refusal-page");
    http = createHttpServer((req, res) => {
      if (req.url?.startsWith("/protocast/stream") === true) streams++;
      if (server.handleHttp(req, res)) return;
      const path = new URL(req.url ?? "/", "http://localhost").pathname;
      if (path === "/app.js") res.writeHead(200, { "content-type": "text/javascript" }).end(script);
      else if (path === "/") res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>refusal</title><script type="module" src="/app.js"></script>');
      else res.writeHead(404).end();
    });
    server = createServer({
      http,
      logger: () => undefined,
      authenticate: (req): Principal => {
        upgrades++;
        if (req.token !== "good") throw new ProtocastError(Code.Unauthenticated, "token not recognised");
        return { id: "good", scopes: ["chat"] };
      },
    });
    server.implement(ChatService, { sendMessage: () => ({ messageId: "m" }), listRooms: () => ({ rooms: [] }) });
    await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close({ deadlineMs: 0 });
    http?.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  });

  const eventsOf = async (token: string, waitMs: number): Promise<PageEvent[]> => {
    const page = await browser!.newPage();
    try {
      await page.goto(`${base}?token=${token}`);
      await page.waitForTimeout(waitMs);
      return await page.evaluate(() => (window as unknown as { protocastEvents: PageEvent[] }).protocastEvents);
    } finally {
      await page.close();
    }
  };

  it("a bad token gives an UNAUTHENTICATED error event within a second, state closed, and no reconnect loop", async () => {
    upgrades = 0;
    streams = 0;
    // Long enough for several attempts at a 100-200 ms backoff, were there a loop.
    const events = await eventsOf("bad", 1_500);
    const errors = events.filter((e) => e.kind === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: Code.Unauthenticated, reason: "unauthenticated", closeCode: 4502 });
    expect(errors[0]!.message).toContain("token not recognised");
    expect(errors[0]!.at).toBeLessThan(1_000);
    const states = events.filter((e) => e.kind === "state").map((e) => e.state);
    expect(states).toEqual(["closed"]);
    expect(events.find((e) => e.kind === "ready_rejected")).toMatchObject({ code: Code.Unauthenticated });
    expect(upgrades).toBe(1);
    // The refusal came from the server itself: the HTTP fallback was not tried behind it.
    expect(streams).toBe(0);
  });

  it("a good token opens, with no error event", async () => {
    const events = await eventsOf("good", 500);
    expect(events.filter((e) => e.kind === "error")).toHaveLength(0);
    expect(events.filter((e) => e.kind === "state").map((e) => e.state)).toEqual(["open"]);
  });
});
