import { existsSync, mkdirSync } from "node:fs";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, type Connection } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { launchChromium, shownMessages, skipBrowser, waitForState } from "./support.js";
import { startChatServer, type RunningChatServer } from "../../examples/chat/server.js";

// The chat demo in real Chromium: two pages talk through the generated client over the
// browser's WebSocket, and survive a server restart without a reload.


const ROOM = "lobby";
const WAIT = { timeout: 15_000 };

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

describe.skipIf(skipBrowser)("chat demo in Chromium", () => {
  let server: RunningChatServer;
  let browser: Browser | undefined;
  let alice: Page;
  let bob: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    server = await startChatServer({ port: 0 });
    browser = await launchChromium();
    const open = async (user: string): Promise<Page> => {
      const context = await browser!.newContext({ viewport: { width: 1000, height: 640 } });
      const page = await context.newPage();
      page.on("pageerror", (e) => pageErrors.push(`${user}: ${e.message}`));
      await page.goto(`${server.url}?user=${user}&room=${ROOM}`);
      await waitForState(page, "open");
      return page;
    };
    alice = await open("alice");
    bob = await open("bob");
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it("two pages exchange messages: both show both, in the same order, once", async () => {
    for (const page of [alice, bob]) {
      await page.locator('#members li[data-principal="alice"]').waitFor(WAIT);
      await page.locator('#members li[data-principal="bob"]').waitFor(WAIT);
    }

    await send(alice, "hello from alice, @bob");
    await waitForText(bob, "hello from alice, @bob");
    await send(bob, "hi alice");
    for (const page of [alice, bob]) await waitForText(page, "hi alice");

    const onAlice = await shownMessages(alice);
    const onBob = await shownMessages(bob);
    expect(onAlice.map((m) => [m.author, m.text])).toEqual([
      ["alice", "hello from alice, @bob"],
      ["bob", "hi alice"],
    ]);
    expect(onBob).toEqual(onAlice);
    expect(new Set(onAlice.map((m) => m.id)).size).toBe(2);

    // What the server accepted, and in which order it published.
    const posted = server.app.posted.filter((m) => m.roomId === ROOM);
    expect(posted.map((m) => [m.messageId, m.author, m.text])).toEqual(onAlice.map((m) => [m.id, m.author, m.text]));
    expect(posted.map((m) => m.offset)).toEqual([1, 2]);

    // The mention reached bob as a direct notice, and only bob.
    await bob.locator("#notices li", { hasText: "alice mentioned you" }).waitFor(WAIT);
    expect(await alice.locator("#notices li").count()).toBe(0);

    // Both users wrote in the room and are online, so listRooms counts them.
    await bob.locator('#rooms li[data-room-id="lobby"] .count', { hasText: "2 active" }).waitFor(WAIT);
  });

  it("bob sees alice typing, and the indicator goes away when she stops", async () => {
    await alice.locator("#text").pressSequentially("typing som", { delay: 20 });
    await bob.waitForFunction(() => document.getElementById("typing")?.textContent === "alice is typing…", null, WAIT);
    expect(await alice.locator("#typing").textContent()).toBe("");

    await alice.fill("#text", "");
    await bob.waitForFunction(() => document.getElementById("typing")?.textContent === "", null, WAIT);
  });

  it("reconnects after a server restart and keeps chatting without a reload", async () => {
    const port = server.port;
    const mark = async (page: Page): Promise<void> => {
      await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    };
    await mark(alice);
    await mark(bob);

    await server.close();
    await Promise.all([waitForState(alice, "reconnecting"), waitForState(bob, "reconnecting")]);
    server = await startChatServer({ port });
    await Promise.all([waitForState(alice, "open", 30_000), waitForState(bob, "open", 30_000)]);

    await send(alice, "still here after the restart");
    for (const page of [alice, bob]) await waitForText(page, "still here after the restart");
    await send(bob, "me too");
    for (const page of [alice, bob]) await waitForText(page, "me too");

    for (const page of [alice, bob]) {
      expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
      const texts = (await shownMessages(page)).map((m) => m.text);
      expect(texts).toEqual(["hello from alice, @bob", "hi alice", "still here after the restart", "me too"]);
    }
    expect(await shownMessages(bob)).toEqual(await shownMessages(alice));
    expect(server.app.posted.map((m) => m.text)).toEqual(["still here after the restart", "me too"]);
  }, 60_000);

  it("saves a screenshot of the page", async () => {
    mkdirSync("test-results", { recursive: true });
    await bob.locator("#text").pressSequentially("almost", { delay: 20 });
    await alice.waitForFunction(() => document.getElementById("typing")?.textContent === "bob is typing…", null, WAIT);
    await alice.screenshot({ path: "test-results/chat.png" });
    expect(existsSync("test-results/chat.png")).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});

// The same server from Node, with the generated client the page uses: what it refuses and
// what it rewrites. Needs no browser.
describe("chat demo server", () => {
  let server: RunningChatServer;
  const conns: Connection[] = [];
  const client = (user: string) => {
    const conn = connect(server.url.replace(/^http/, "ws") + "protocast", { token: user, reconnect: false });
    conns.push(conn);
    return { conn, chat: createClient(ChatService, conn) };
  };

  beforeAll(async () => {
    server = await startChatServer({ port: 0 });
  });
  afterAll(async () => {
    await Promise.all(conns.map((c) => c.close()));
    await server.close();
  });

  it("refuses empty, oversized and misaddressed messages with INVALID_ARGUMENT", async () => {
    const { chat } = client("carol");
    const refused = async (request: { roomId: string; text: string }): Promise<ProtocastError> => {
      const e: unknown = await chat.sendMessage(request).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(ProtocastError);
      return e as ProtocastError;
    };
    for (const request of [
      { roomId: "checks", text: "" },
      { roomId: "checks", text: "   " },
      { roomId: "", text: "hi" },
      { roomId: "checks", text: "x".repeat(2001) },
    ]) {
      expect((await refused(request)).code).toBe(Code.InvalidArgument);
    }
    expect((await refused({ roomId: "checks", text: "x".repeat(2001) })).message).toContain("2001 characters; at most 2000");
    // 2000 characters, some outside the BMP, is still fine.
    await chat.sendMessage({ roomId: "checks", text: "😀".repeat(1000) + "x".repeat(1000) });
    expect(server.app.posted.filter((m) => m.roomId === "checks")).toHaveLength(1);
  });

  it("refuses a connection whose token is not a user name", async () => {
    const conn = connect(server.url.replace(/^http/, "ws") + "protocast", { token: "no spaces allowed", reconnect: false });
    conns.push(conn);
    await expect(conn.opened()).rejects.toBeInstanceOf(ProtocastError);
  });

  it("signs typing indicators with the publisher, whatever name they claim", async () => {
    const watcher = client("dave").chat;
    const typing = watcher.typing({ roomId: "signed" });
    await typing.ready;
    const { conn, chat } = client("mallory");
    await conn.opened();
    await chat.publishTyping({ roomId: "signed" }, { user: "alice", typing: true }, { confirm: true });
    for await (const t of typing) {
      expect(t.user).toBe("mallory");
      expect(t.typing).toBe(true);
      break;
    }
  });
});
