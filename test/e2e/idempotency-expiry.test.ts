import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, connect, createClient, type Connection } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const NAMED = Number(process.env["SOAK_NAMED"] ?? 120);
const ANONYMOUS = Number(process.env["SOAK_ANONYMOUS"] ?? 60);
const TTL_MS = 300;

/** A collected heap is comparable across a run; an uncollected one is mostly noise. */
function collectedHeap(): number | undefined {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as (() => void) | undefined;
  if (typeof gc !== "function") return undefined;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

// The soak that found records outliving their ttl: principals that call an exactly-once method
// once, drop their connection abruptly and never come back. Everything the server holds for
// them, idempotency records included, must drain on its own.
describe("idempotency records drain without further calls", () => {
  let h: Harness;
  let proxy: TcpProxy;
  let anonymous = 0;
  let runs = 0;

  beforeAll(async () => {
    h = await startHarness({
      // "user-*": a named principal; "anon": one anonymous principal per connection (the default
      // hook's behaviour); "guest": anonymous connections sharing one id.
      authenticate: (req) => {
        const token = req.token ?? "anon";
        if (token === "anon") return { id: `anon-${++anonymous}`, scopes: ["chat"], anonymous: true };
        if (token === "guest") return { id: "guest", scopes: ["chat"], anonymous: true };
        return { id: token, scopes: ["chat"] };
      },
      idempotencyTtlMs: TTL_MS,
      graceMs: 300,
      maxConnectionsPerPrincipal: 1_000,
      rateMessagesPerSecond: 100_000,
      rateMessagesBurst: 100_000,
    });
    h.server.implement(ChatService, {
      sendMessage(req, ctx) {
        runs++;
        return { messageId: `${ctx.principal.id}:${req.text}:${runs}` };
      },
      listRooms: () => ({ rooms: [] }),
    });
    proxy = await startTcpProxy(h.port);
  });
  afterAll(async () => {
    await proxy.close();
    await h.close();
  });

  const through = (token: string): Connection => connect(`ws://127.0.0.1:${proxy.port}/protocast`, { token, reconnect: false });

  it("returns records, sessions, connections and channels to zero after ttl and grace", async () => {
    const baseline = h.server.stats();
    expect(baseline).toMatchObject({ connections: 0, sessions: 0, channels: 0, idempotencyRecords: 0, acksPending: 0 });
    const heapBefore = collectedHeap();

    const tokens = [
      ...Array.from({ length: NAMED }, (_, i) => `user-${i}`),
      ...Array.from({ length: ANONYMOUS }, (_, i) => (i % 2 === 0 ? "anon" : "guest")),
    ];
    const conns = tokens.map(through);
    const chats = await Promise.all(
      conns.map(async (conn, i) => {
        const chat = createClient(ChatService, conn);
        await chat.roomEvents({ roomId: `soak-${i % 7}` }).ready;
        return chat;
      }),
    );
    const runsBefore = runs;
    // Same key everywhere: scopes keep the records apart (one per principal or session).
    await Promise.all(chats.map((chat) => chat.sendMessage({ roomId: "soak", text: "once" }, { idempotencyKey: "soak-key" })));
    const peak = h.server.stats();
    expect(runs - runsBefore).toBe(tokens.length);
    // The earliest records may already have expired while the last calls ran.
    expect(peak.idempotencyRecords).toBeGreaterThan(0);
    expect(peak.idempotencyRecords).toBeLessThanOrEqual(tokens.length);
    expect(peak.sessions).toBe(tokens.length);
    expect(peak.channels).toBe(7);

    proxy.cut(); // abrupt: no close frame, the sessions wait out their grace period
    const drained = (): boolean => {
      const s = h.server.stats();
      return s.connections === 0 && s.sessions === 0 && s.channels === 0 && s.acksPending === 0 && s.idempotencyRecords === 0;
    };
    const cutAt = Date.now();
    await until(drained, `everything back to baseline, now ${JSON.stringify({ ...h.server.stats(), counters: undefined })}`, 10_000);
    const drainMs = Date.now() - cutAt;
    for (const conn of conns) await conn.close();
    // Let go of the clients, so that the heap figure is the server's.
    conns.length = 0;
    chats.length = 0;

    const heapAfter = collectedHeap();
    console.log(
      `idempotency soak: ${tokens.length} principals/sessions, records peak ${peak.idempotencyRecords} -> 0 in ${drainMs} ms after the cut (ttl ${TTL_MS} ms, grace 300 ms)` +
        (heapBefore !== undefined && heapAfter !== undefined ? `; heap after gc ${(heapBefore / 2 ** 20).toFixed(1)} -> ${(heapAfter / 2 ** 20).toFixed(1)} MiB` : ""),
    );
    // Generous: the clients live in this process too, and their modules warm up during the run.
    if (heapBefore !== undefined && heapAfter !== undefined) expect(heapAfter - heapBefore).toBeLessThan(48 * 2 ** 20);
  }, 30_000);

  it("scopes anonymous principals that share an id to their session (PROTOCOL.md 5.3 rule 1)", async () => {
    const a = createClient(ChatService, h.client({ token: "guest" }));
    const b = createClient(ChatService, h.client({ token: "guest" }));
    const first = await a.sendMessage({ roomId: "r", text: "same" }, { idempotencyKey: "guest-key" });
    const again = await a.sendMessage({ roomId: "r", text: "same" }, { idempotencyKey: "guest-key" });
    const other = await b.sendMessage({ roomId: "r", text: "same" }, { idempotencyKey: "guest-key" });
    expect(again.messageId).toBe(first.messageId); // the same session is deduplicated
    expect(other.messageId).not.toBe(first.messageId); // another session never gets its outcome
  });
});

describe("a window full of running requests", () => {
  let h: Harness;
  let release: () => void = () => undefined;

  beforeAll(async () => {
    h = await startHarness({ authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }), maxIdempotencyRecords: 2 });
    const gate = new Promise<void>((resolve) => (release = resolve));
    h.server.implement(ChatService, {
      async sendMessage(req) {
        await gate;
        return { messageId: req.text };
      },
      listRooms: () => ({ rooms: [] }),
    });
  });
  afterAll(() => h.close());

  it("refuses the next exactly-once call with RESOURCE_EXHAUSTED until one finishes", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const running = [1, 2].map((i) => chat.sendMessage({ roomId: "r", text: `m${i}` }, { idempotencyKey: `k${i}` }));
    await until(() => h.server.stats().idempotencyRecords === 2, "two running records");
    await expect(chat.sendMessage({ roomId: "r", text: "m3" }, { idempotencyKey: "k3" })).rejects.toMatchObject({
      code: Code.ResourceExhausted,
      reason: "idempotency_window_full",
    });
    release();
    await Promise.all(running);
    expect((await chat.sendMessage({ roomId: "r", text: "m3" }, { idempotencyKey: "k3" })).messageId).toBe("m3");
    expect(h.server.stats().idempotencyRecords).toBe(2);
  });
});
