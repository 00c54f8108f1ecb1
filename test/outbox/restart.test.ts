import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, fileOutbox, memoryOutbox, type Connection, type ConnectOptions, type Metadata, type OutboxStore, type Tracing } from "protocast/node";
import { ChatService, type ChatServiceRecovered } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

/** A tracer that puts a traceparent of this trace id, with a fresh span id per span, in what it sends. */
function fakeTracing(traceId: string): Tracing {
  let spans = 0;
  const ids = new Map<object, string>();
  return {
    start() {
      const span = { fail: () => undefined, end: () => undefined };
      ids.set(span, (++spans).toString(16).padStart(16, "0"));
      return span;
    },
    inject(span, into) {
      into["traceparent"] = `00-${traceId}-${ids.get(span)}-01`;
    },
    run: (_span, fn) => fn(),
  };
}

// A client "restart" is a new connect() over the same store: the first client is closed while
// calls are unanswered (as a page reload or a crash would leave them), and the second one must
// send them again under the same keys and report each outcome once, with the server running
// each call once.

describe("the outbox across a client restart", () => {
  let h: Harness;
  /** Handler runs per idempotency key, and the reply each run gave. */
  const runs = new Map<string, number>();
  const replies = new Map<string, string>();
  /** The metadata the handler saw, by idempotency key. */
  const metadataOf = new Map<string, Metadata>();
  /** Texts whose handler waits until released. */
  let slow = (_text: string): boolean => false;
  let release: () => void = () => undefined;
  let released = Promise.resolve();
  let dir = "";

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "protocast-outbox-"));
    h = await startHarness({ authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) });
    h.server.implement(ChatService, {
      async sendMessage(req, ctx) {
        if (slow(req.text)) await released;
        const key = ctx.idempotencyKey;
        runs.set(key, (runs.get(key) ?? 0) + 1);
        metadataOf.set(key, { ...ctx.metadata });
        if (req.text.startsWith("refuse")) throw new ProtocastError(Code.FailedPrecondition, "room is closed", { reason: "room_closed" });
        const id = `${req.text}#${runs.get(key)}`;
        replies.set(key, id);
        return { messageId: id };
      },
      listRooms: () => ({ rooms: [] }),
    });
  });
  afterAll(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  const hold = (): void => {
    released = new Promise((r) => (release = r));
  };

  const client = (store: OutboxStore, o: ConnectOptions = {}): Connection => h.client({ token: "alice", outbox: store, ...o });

  async function collect(conn: Connection): Promise<ChatServiceRecovered[]> {
    const out: ChatServiceRecovered[] = [];
    for await (const r of createClient(ChatService, conn).$recovered()) out.push(r);
    return out;
  }

  async function restartScenario(first: OutboxStore, second: OutboxStore, tag: string): Promise<void> {
    hold();
    slow = (text) => text.startsWith(`${tag}-slow`);
    const c1 = client(first);
    const chat1 = createClient(ChatService, c1);
    const answered = new Map<string, string>();
    const failed: unknown[] = [];
    // 20 answered at once, 30 held on the server: still running when the first client goes.
    const calls = [];
    for (let i = 0; i < 20; i++) calls.push(chat1.sendMessage({ roomId: "r", text: `${tag}-fast-${i}` }).then((r) => answered.set(`${tag}-fast-${i}`, r.messageId)));
    for (let i = 0; i < 30; i++) calls.push(chat1.sendMessage({ roomId: "r", text: `${tag}-slow-${i}` }).then((r) => answered.set(`${tag}-slow-${i}`, r.messageId), (e: unknown) => failed.push(e)));
    await until(() => answered.size === 20 && runs.size >= 20, "the fast calls to be answered");
    await until(() => c1.outbox.held.records === 30, "30 calls held");
    // The answered calls' records are deleted after delivery; a crash before that would bring them back once more.
    await c1.outbox.stored();
    await c1.close();
    await Promise.allSettled(calls);
    expect(failed).toHaveLength(30);
    expect(failed.every((e) => (e as { code?: number }).code === Code.Canceled)).toBe(true);
    release();

    const c2 = client(second);
    const recovered = await collect(c2);
    expect(recovered).toHaveLength(30);
    const texts = recovered.map((r) => r.request.text).sort();
    expect(texts).toEqual(Array.from({ length: 30 }, (_, i) => `${tag}-slow-${i}`).sort());
    for (const r of recovered) {
      expect(r.method).toBe("sendMessage");
      expect(r.path).toBe("acme.chat.v1.ChatService/SendMessage");
      if (r.outcome.kind !== "reply") throw new Error(`expected a reply, got ${r.outcome.kind}`);
      // The first run's reply, from the server's window: the handler ran once.
      expect(r.outcome.response.messageId).toBe(`${r.request.text}#1`);
      expect(replies.get(r.idempotencyKey)).toBe(r.outcome.response.messageId);
    }
    for (const key of recovered.map((r) => r.idempotencyKey)) expect(runs.get(key)).toBe(1);
    expect(await second.list()).toEqual([]);
    expect(c2.outbox.held.records).toBe(0);
    // Nothing answered in the first client comes back in the second.
    expect(recovered.filter((r) => answered.has(r.request.text))).toEqual([]);
  }

  it("a new client over the same memory store resends the unanswered calls and reports each outcome once", async () => {
    const store = memoryOutbox();
    await restartScenario(store, store, "mem");
  });

  it("the same with the JSON file store, read back by a new store object (as a new process would)", async () => {
    const path = join(dir, "outbox.json");
    await restartScenario(fileOutbox(path), fileOutbox(path), "file");
  });

  it("a stored call that was never sent runs once after the restart; a recorded error is an outcome too", async () => {
    const store = memoryOutbox();
    const now = Date.now();
    const enc = (text: string): Uint8Array => ChatService.calls["sendMessage"]!.inputCodec.encode({ roomId: "r", text } as never);
    await store.put({ version: 1, key: "never-sent-1", method: "acme.chat.v1.ChatService/SendMessage", request: enc("unsent"), timeoutMs: 5_000, storedAt: now - 1_000 });
    await store.put({ version: 1, key: "never-sent-2", method: "acme.chat.v1.ChatService/SendMessage", request: enc("refuse-me"), timeoutMs: 5_000, storedAt: now - 1_000 });
    const recovered = await collect(client(store));
    const byKey = new Map(recovered.map((r) => [r.idempotencyKey, r]));
    expect(byKey.get("never-sent-1")?.outcome).toMatchObject({ kind: "reply", response: { messageId: "unsent#1" } });
    expect(byKey.get("never-sent-2")?.outcome).toMatchObject({ kind: "error", error: { code: Code.FailedPrecondition, reason: "room_closed" } });
    expect(runs.get("never-sent-1")).toBe(1);
  });

  it("records older than maxAgeMs are reported as expired and not sent", async () => {
    const store = memoryOutbox();
    const request = ChatService.calls["sendMessage"]!.inputCodec.encode({ roomId: "r", text: "too-old" } as never);
    await store.put({ version: 1, key: "old-key", method: "acme.chat.v1.ChatService/SendMessage", request, timeoutMs: 5_000, storedAt: Date.now() - 11 * 60_000 });
    const recovered = await collect(client(store));
    expect(recovered).toHaveLength(1);
    expect(recovered[0]!.outcome).toMatchObject({ kind: "expired", error: { code: Code.Unavailable, reason: "outbox_expired" } });
    expect(recovered[0]!.request.text).toBe("too-old");
    expect(runs.has("old-key")).toBe(false);
    expect(await store.list()).toEqual([]);
  });

  it("calls that never reached the server run after a restart with the metadata they were made with, trace context included", async () => {
    const proxy = await startTcpProxy(h.port);
    const url = `ws://127.0.0.1:${proxy.port}/protocast`;
    const path = join(dir, "metadata.json");
    proxy.block();
    const first = connect(url, { token: "alice", outbox: fileOutbox(path), metadata: { tenant: "acme", locale: "en" }, tracing: fakeTracing("a".repeat(32)), reconnect: { baseMs: 50, capMs: 200 } });
    const chat1 = createClient(ChatService, first);
    const pending = [
      chat1.sendMessage({ roomId: "r", text: "meta-own" }, { metadata: { locale: "fr", "x-request-id": "r-17" } }).catch(() => undefined),
      chat1.sendMessage({ roomId: "r", text: "meta-defaults" }).catch(() => undefined),
    ];
    await until(() => first.outbox.held.records === 2, "2 calls held");
    await first.outbox.stored();
    await first.close();
    await Promise.all(pending);
    proxy.unblock();
    // A new process: a new store object over the file, other defaults, a tracer of its own.
    const second = connect(url, { token: "alice", outbox: fileOutbox(path), metadata: { tenant: "other" }, tracing: fakeTracing("b".repeat(32)), reconnect: { baseMs: 50, capMs: 200 } });
    const recovered = await collect(second);
    expect(recovered.map((r) => [r.request.text, r.outcome.kind]).sort()).toEqual([["meta-defaults", "reply"], ["meta-own", "reply"]]);
    const seen = new Map(recovered.map((r) => [r.request.text, metadataOf.get(r.idempotencyKey)]));
    for (const r of recovered) expect(runs.get(r.idempotencyKey)).toBe(1);
    // The first client's defaults with the call's own over them, and the first client's trace.
    expect(seen.get("meta-own")).toEqual({ tenant: "acme", locale: "fr", "x-request-id": "r-17", traceparent: expect.stringMatching(/^00-a{32}-[0-9a-f]{16}-01$/) });
    expect(seen.get("meta-defaults")).toEqual({ tenant: "acme", locale: "en", traceparent: expect.stringMatching(/^00-a{32}-[0-9a-f]{16}-01$/) });
    expect(seen.get("meta-own")!["traceparent"]).not.toBe(seen.get("meta-defaults")!["traceparent"]);
    await second.close();
    await proxy.close();
  });

  it("with the server unreachable at the restart, the calls wait and are sent once it is back", async () => {
    const proxy = await startTcpProxy(h.port);
    const url = `ws://127.0.0.1:${proxy.port}/protocast`;
    const store = memoryOutbox();
    hold();
    slow = (text) => text.startsWith("down-");
    const first = connect(url, { token: "alice", outbox: store, reconnect: { baseMs: 50, capMs: 200 } });
    const chat1 = createClient(ChatService, first);
    const pending = Array.from({ length: 10 }, (_, i) => chat1.sendMessage({ roomId: "r", text: `down-${i}` }).catch(() => undefined));
    await until(() => first.outbox.held.records === 10, "10 calls held");
    await until(async () => (await store.list()).length === 10, "10 records stored");
    proxy.cut();
    proxy.block();
    await first.close();
    await Promise.all(pending);
    release();
    const second = connect(url, { token: "alice", outbox: store, reconnect: { baseMs: 50, capMs: 200 } });
    const reading = collect(second);
    await until(() => second.state === "reconnecting", "the second connection to find the server away");
    expect(second.state).not.toBe("open");
    proxy.unblock();
    const recovered = await reading;
    expect(recovered.map((r) => r.request.text).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `down-${i}`).sort());
    for (const r of recovered) expect(runs.get(r.idempotencyKey)).toBe(1);
    await second.close();
    await proxy.close();
  });
});
