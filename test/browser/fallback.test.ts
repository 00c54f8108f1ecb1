import { existsSync, mkdirSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { connect as tcpConnect, createServer as createTcpServer, type Socket } from "node:net";
import { type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, shownMessages, skipBrowser, waitForState } from "./support.js";
import { startChatServer, type RunningChatServer } from "../../examples/chat/server.js";

// The chat demo in real Chromium when the WebSocket cannot be used: refused by the server,
// swallowed by something in the path, or turned off in the page. The pages must still chat over
// the HTTP fallback (a streamed GET down, POSTs up), survive a server restart and the network
// going away, and show every message once, in order.


const ROOM = "lobby";
const WAIT = { timeout: 15_000 };

async function shownTexts(page: Page): Promise<string[]> {
  return (await shownMessages(page)).map((m) => m.text);
}

/** Open, over this transport (what the page shows next to the state). */
function waitForOpenOver(page: Page, transport: string, timeout = 15_000): Promise<unknown> {
  return page.waitForFunction(
    (t) => document.getElementById("state")?.dataset["state"] === "open" && document.getElementById("transport")?.dataset["transport"] === t,
    transport,
    { timeout },
  );
}

function waitForText(page: Page, text: string): Promise<unknown> {
  return page.waitForFunction(
    (t) => Array.from(document.querySelectorAll("#messages li.message .text")).some((el) => el.textContent === t),
    text,
    WAIT,
  );
}

async function send(page: Page, text: string): Promise<void> {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

function sessionOf(page: Page): Promise<string | undefined> {
  return page.$eval("#state", (el) => (el as HTMLElement).dataset["session"]);
}

async function markNotReloaded(page: Page): Promise<void> {
  await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
}

async function notReloaded(page: Page): Promise<boolean | undefined> {
  return page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded);
}

/** Sends from one page and waits until every page shows the message. */
async function say(from: Page, text: string, everyone: readonly Page[]): Promise<void> {
  await send(from, text);
  for (const page of everyone) await waitForText(page, text);
}

/** What a chat server's HTTP server received, by kind: who opened fallback streams, POSTs, upgrades. */
interface Received {
  /** The user of each GET {path}/stream (the bearer token is the user name). */
  readonly streams: string[];
  /** The user of each POST {path}/send. */
  readonly posts: string[];
  /** The user of each WebSocket upgrade request, accepted or not. */
  readonly upgrades: string[];
}

function watchRequests(server: RunningChatServer): Received {
  const received: Received = { streams: [], posts: [], upgrades: [] };
  const userOf = (req: IncomingMessage): string => {
    const auth = req.headers.authorization ?? "";
    if (auth.startsWith("Bearer ")) return auth.slice(7);
    // On an upgrade the token travels as a subprotocol value (base64url of the name).
    const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim());
    const token = offered.find((p) => p.startsWith("protocast.token."));
    return token === undefined ? "" : Buffer.from(token.slice("protocast.token.".length), "base64url").toString("utf8");
  };
  const http = server.protocast.http;
  // Prepended, so that the record is taken before the server answers. Only this test's pages
  // send upgrades, all to the Protocast path, so a second "upgrade" listener changes nothing.
  http.prependListener("request", (req: IncomingMessage) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method === "GET" && path === "/protocast/stream") received.streams.push(userOf(req));
    if (req.method === "POST" && path === "/protocast/send") received.posts.push(userOf(req));
  });
  http.prependListener("upgrade", (req: IncomingMessage) => {
    received.upgrades.push(userOf(req));
  });
  return received;
}

/**
 * A loopback TCP proxy like some corporate gateways: plain HTTP requests pass, but a request
 * with `Upgrade: websocket` is held open and never answered. A browser opens every WebSocket on
 * a connection of its own, so looking at the first request of each connection is enough.
 */
interface SwallowingProxy {
  readonly port: number;
  readonly url: string;
  /** Upgrade requests received and held, so far. */
  readonly held: number;
  /** Upgrade requests passed on to the server, so far. */
  readonly passed: number;
  /** From now on upgrades pass too; those already held stay held, as the old path would. */
  letUpgradesThrough(): void;
  close(): Promise<void>;
}

async function startSwallowingProxy(targetPort: number): Promise<SwallowingProxy> {
  const sockets = new Set<Socket>();
  let held = 0;
  let passed = 0;
  let swallow = true;
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => undefined);
  };
  const server = createTcpServer((inbound) => {
    track(inbound);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0 && head.length < 16 * 1024) return;
      inbound.off("data", onData);
      const headers = head.subarray(0, end < 0 ? head.length : end).toString("latin1");
      const upgrade = /^upgrade:\s*websocket\s*$/im.test(headers);
      if (upgrade && swallow) {
        held++;
        inbound.pause(); // read nothing more, answer nothing, close nothing
        return;
      }
      if (upgrade) passed++;
      const outbound = tcpConnect(targetPort, "127.0.0.1");
      track(outbound);
      inbound.on("close", () => outbound.destroy());
      outbound.on("close", () => inbound.destroy());
      outbound.write(head);
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    };
    inbound.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    port: address.port,
    url: `http://127.0.0.1:${address.port}/`,
    get held() {
      return held;
    },
    get passed() {
      return passed;
    },
    letUpgradesThrough() {
      swallow = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(skipBrowser)("chat demo over the HTTP fallback in Chromium", () => {
  let browser: Browser | undefined;
  const servers = new Set<RunningChatServer>();
  const proxies: SwallowingProxy[] = [];
  const pageErrors: string[] = [];
  /** WebSocket URLs each page tried to open, by "<test>/<user>". */
  const webSockets = new Map<string, string[]>();
  /** The pages of the forced-fallback test, kept for the screenshot. */
  let forced: { alice: Page; bob: Page } | undefined;

  const start = async (options: Parameters<typeof startChatServer>[0] = {}): Promise<RunningChatServer> => {
    const server = await startChatServer({ port: 0, ...options });
    servers.add(server);
    return server;
  };
  const stop = async (server: RunningChatServer): Promise<void> => {
    await server.close();
    servers.delete(server);
  };

  /** A page in a browser context of its own (its own network, for setOffline). */
  const open = async (label: string, base: string, user: string, query: Record<string, string> = {}): Promise<{ page: Page; context: BrowserContext }> => {
    const context = await browser!.newContext({ viewport: { width: 1000, height: 640 } });
    const page = await context.newPage();
    const key = `${label}/${user}`;
    webSockets.set(key, []);
    page.on("pageerror", (e) => pageErrors.push(`${key}: ${e.message}`));
    page.on("websocket", (ws) => webSockets.get(key)?.push(ws.url()));
    await page.goto(`${base}?${new URLSearchParams({ user, room: ROOM, ...query }).toString()}`);
    return { page, context };
  };

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(Array.from(servers, (s) => s.close()));
    await Promise.all(proxies.map((p) => p.close()));
  });

  it("falls back when the server refuses the WebSocket upgrade, and two pages chat over it", async () => {
    const server = await start({ transports: ["http"] });
    const received = watchRequests(server);
    const { page: alice } = await open("refused", server.url, "alice");
    const { page: bob } = await open("refused", server.url, "bob");
    for (const page of [alice, bob]) {
      await waitForOpenOver(page, "http");
      await page.locator('#members li[data-principal="alice"]').waitFor(WAIT);
      await page.locator('#members li[data-principal="bob"]').waitFor(WAIT);
    }
    expect(await alice.locator("#transport").textContent()).toBe("HTTP fallback");

    await say(alice, "hello over the fallback", [alice, bob]);
    await say(bob, "hi alice, same here", [alice, bob]);

    const onAlice = await shownMessages(alice);
    expect(onAlice.map((m) => [m.author, m.text])).toEqual([
      ["alice", "hello over the fallback"],
      ["bob", "hi alice, same here"],
    ]);
    expect(await shownMessages(bob)).toEqual(onAlice);

    // The server published both, in that order, and got them over the fallback: each page
    // tried a WebSocket first, was refused, and opened a stream instead.
    expect(server.app.posted.map((m) => [m.messageId, m.author, m.text])).toEqual(onAlice.map((m) => [m.id, m.author, m.text]));
    expect(server.app.posted.map((m) => m.offset)).toEqual([1, 2]);
    for (const user of ["alice", "bob"]) {
      expect(received.upgrades).toContain(user);
      expect(received.streams).toContain(user);
      expect(received.posts).toContain(user);
      expect(webSockets.get(`refused/${user}`)?.length).toBeGreaterThan(0);
    }
  });

  it("falls back when something in the path swallows the upgrade, after the open timeout", async () => {
    const server = await start();
    const received = watchRequests(server);
    const proxy = await startSwallowingProxy(server.port);
    proxies.push(proxy);
    // 800 ms instead of the default 3 s before the WebSocket counts as blocked.
    const settings = { wsTimeoutMs: "800" };
    const { page: alice } = await open("swallowed", proxy.url, "alice", settings);
    const { page: bob } = await open("swallowed", proxy.url, "bob", settings);
    for (const page of [alice, bob]) {
      await waitForOpenOver(page, "http");
      await page.locator('#members li[data-principal="bob"]').waitFor(WAIT);
    }

    await say(bob, "through the gateway", [alice, bob]);
    await say(alice, "it works", [alice, bob]);

    for (const page of [alice, bob]) expect(await shownTexts(page)).toEqual(["through the gateway", "it works"]);
    expect(await shownMessages(bob)).toEqual(await shownMessages(alice));
    expect(server.app.posted.map((m) => [m.author, m.text])).toEqual([
      ["bob", "through the gateway"],
      ["alice", "it works"],
    ]);
    // The pages' upgrades stopped at the proxy; the server only ever saw the fallback.
    expect(proxy.held).toBeGreaterThanOrEqual(2);
    expect(received.upgrades).toEqual([]);
    expect(new Set(received.streams)).toEqual(new Set(["alice", "bob"]));
  });

  it("forced onto the fallback, survives a server restart without a reload", async () => {
    let server = await start();
    let received = watchRequests(server);
    const settings = { transport: "http" };
    const { page: alice } = await open("forced", server.url, "alice", settings);
    const { page: bob } = await open("forced", server.url, "bob", settings);
    forced = { alice, bob };
    for (const page of [alice, bob]) {
      await waitForOpenOver(page, "http");
      await page.locator('#members li[data-principal="bob"]').waitFor(WAIT);
    }
    await say(alice, "before the restart", [alice, bob]);
    await say(bob, "noted", [alice, bob]);
    expect(server.app.posted.map((m) => m.text)).toEqual(["before the restart", "noted"]);

    const sessions = [await sessionOf(alice), await sessionOf(bob)];
    await markNotReloaded(alice);
    await markNotReloaded(bob);
    const port = server.port;
    await stop(server);
    await Promise.all([waitForState(alice, "reconnecting"), waitForState(bob, "reconnecting")]);
    server = await start({ port });
    received = watchRequests(server);
    await Promise.all([waitForOpenOver(alice, "http", 30_000), waitForOpenOver(bob, "http", 30_000)]);
    // The new server knows neither session: both pages start new ones and subscribe again.
    expect([await sessionOf(alice), await sessionOf(bob)]).not.toEqual(sessions);
    for (const page of [alice, bob]) await page.locator('#members li[data-principal="alice"]').waitFor(WAIT);

    await say(alice, "after the restart", [alice, bob]);
    await say(bob, "still here", [alice, bob]);

    for (const page of [alice, bob]) {
      expect(await notReloaded(page)).toBe(true);
      expect(await shownTexts(page)).toEqual(["before the restart", "noted", "after the restart", "still here"]);
    }
    expect(await shownMessages(bob)).toEqual(await shownMessages(alice));
    expect(server.app.posted.map((m) => [m.author, m.text])).toEqual([
      ["alice", "after the restart"],
      ["bob", "still here"],
    ]);
    // Forced: neither page ever tried a WebSocket, and the new server got streams from both.
    expect(webSockets.get("forced/alice")).toEqual([]);
    expect(webSockets.get("forced/bob")).toEqual([]);
    expect(received.upgrades).toEqual([]);
    expect(new Set(received.streams)).toEqual(new Set(["alice", "bob"]));
  }, 60_000);

  for (const transport of ["websocket", "http"] as const) {
    it(`recovers when the network goes away and comes back, over ${transport}`, async () => {
      const server = await start();
      const settings = { transport };
      const label = `offline-${transport}`;
      const { page: alice, context: aliceNet } = await open(label, server.url, "alice", settings);
      const { page: bob } = await open(label, server.url, "bob", settings);
      for (const page of [alice, bob]) {
        await waitForOpenOver(page, transport);
        await page.locator('#members li[data-principal="bob"]').waitFor(WAIT);
      }
      await say(alice, "one", [alice, bob]);
      await markNotReloaded(alice);
      const session = await sessionOf(alice);

      await aliceNet.setOffline(true);
      await waitForState(alice, "reconnecting");
      // Bob keeps talking (and mentions alice: a direct notice, kept only by her session);
      // alice writes too, and her message waits for the network.
      await say(bob, "two, @alice", [bob]);
      await send(alice, "three, written offline");
      await say(bob, "four", [bob]);
      expect(await shownTexts(alice)).toEqual(["one"]);

      await aliceNet.setOffline(false);
      await waitForOpenOver(alice, transport, 30_000);
      await waitForText(bob, "three, written offline");
      await waitForText(alice, "four");
      await say(bob, "five", [alice, bob]);

      // Every message once; "three" reached the server after "four", and both pages show the
      // server's order.
      const expected = ["one", "two, @alice", "four", "three, written offline", "five"];
      expect(server.app.posted.map((m) => m.text)).toEqual(expected);
      expect(server.app.posted.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5]);
      for (const page of [alice, bob]) expect(await shownTexts(page)).toEqual(expected);
      expect(await shownMessages(alice)).toEqual(await shownMessages(bob));
      expect(await notReloaded(alice)).toBe(true);
      // The session survived the drop (a resume, not a new session), so the direct notice
      // sent meanwhile was kept for alice and delivered.
      expect(await sessionOf(alice)).toBe(session);
      expect(server.protocast.stats().counters.resumes).toBe(1);
      await alice.locator("#notices li", { hasText: "bob mentioned you in #lobby: two, @alice" }).waitFor(WAIT);
      expect(await alice.locator("#notices li").count()).toBe(1);
    }, 45_000);
  }

  // A WebSocket that timed out while opening must be closed: the browser opens one WebSocket
  // per host at a time, so a swallowed one would hold back the upgrade probe forever.
  it("moves back to WebSocket once the path stops swallowing upgrades", async () => {
    const server = await start();
    const proxy = await startSwallowingProxy(server.port);
    proxies.push(proxy);
    const { page } = await open("unblocked", proxy.url, "carol", { wsTimeoutMs: "500", probeMs: "1000" });
    await waitForOpenOver(page, "http");
    proxy.letUpgradesThrough();
    await waitForOpenOver(page, "websocket", 6_000);
    expect(proxy.passed).toBeGreaterThan(0);
  }, 20_000);

  it("saves a screenshot of a page on the fallback", async () => {
    expect(forced).toBeDefined();
    const { alice, bob } = forced!;
    mkdirSync("test-results", { recursive: true });
    await bob.locator("#text").pressSequentially("typing over http", { delay: 20 });
    await alice.waitForFunction(() => document.getElementById("typing")?.textContent === "bob is typing…", null, WAIT);
    await waitForOpenOver(alice, "http");
    await alice.screenshot({ path: "test-results/chat-fallback.png" });
    expect(existsSync("test-results/chat-fallback.png")).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
