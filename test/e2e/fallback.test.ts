import { describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, nodeWebSocket, type Principal } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { encodeEnvelope } from "../../runtime/wire/encode.js";
import { encodeRecord, RECORD_ENVELOPE } from "../../runtime/transport/records.js";
import { startHarness, until } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

const handlers = {
  sendMessage: (req: { text: string }) => ({ messageId: req.text }),
  listRooms: () => ({ rooms: [] }),
};

// The HTTP fallback transport over real sockets: a streamed response down, POSTs up.
describe("HTTP fallback", () => {
  it("falls back when the server refuses the upgrade, and everything works the same", async () => {
    const h = await startHarness({ transports: ["http"], authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) }, (s) =>
      s.implement(ChatService, handlers),
    );
    try {
      const conn = h.client({ token: "carol" });
      const chat = createClient(ChatService, conn);
      await conn.opened();
      expect(conn.transportKind).toBe("http");
      expect(conn.principal).toBe("carol");
      expect((await chat.sendMessage({ roomId: "r", text: "over http" })).messageId).toBe("over http");
      const sub = chat.roomEvents({ roomId: "fb" });
      await sub.ready;
      const got: string[] = [];
      const reading = (async () => {
        for await (const ev of sub) {
          got.push(ev.text);
          if (got.length === 100) break;
        }
      })();
      for (let i = 0; i < 100; i++) await h.server.publish(ChatService.channels.roomEvents, { roomId: "fb" }, { text: `e${i}` });
      await reading;
      expect(got).toEqual(Array.from({ length: 100 }, (_, i) => `e${i}`));
    } finally {
      await h.close();
    }
  });

  it("keeps every guarantee while the link is cut every 300 ms", async () => {
    const h = await startHarness({ rateMessagesPerSecond: 100_000, rateMessagesBurst: 100_000 }, (s) => s.implement(ChatService, handlers));
    const proxy = await startTcpProxy(h.port);
    try {
      const conn = connect(`ws://127.0.0.1:${proxy.port}/protocast`, { transports: ["http"], reconnect: { baseMs: 5, capMs: 30 } });
      const chat = createClient(ChatService, conn);
      const sub = chat.roomEvents({ roomId: "cut" });
      await sub.ready;
      const TOTAL = 2_000;
      const got: number[] = [];
      const reading = (async () => {
        for await (const ev of sub) {
          got.push(Number(ev.text));
          if (got.length === TOTAL) break;
        }
      })();
      let reconnects = 0;
      conn.on("state", (s) => {
        if (s.newState === "reconnecting") reconnects++;
      });
      const killer = setInterval(() => proxy.cut(), 300);
      const replies: string[] = [];
      try {
        const publishing = (async () => {
          for (let i = 0; i < TOTAL; i += 20) {
            for (let j = i; j < i + 20; j++) void h.server.publish(ChatService.channels.roomEvents, { roomId: "cut" }, { text: String(j) });
            await new Promise((r) => setTimeout(r, 5)); // spread over the cuts, in real time
          }
        })();
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < TOTAL) {
            const n = next++;
            replies.push((await chat.sendMessage({ roomId: "cut", text: String(n) }, { timeoutMs: 30_000 })).messageId);
          }
        };
        await Promise.all([publishing, ...Array.from({ length: 16 }, worker)]);
        await reading;
      } finally {
        clearInterval(killer);
      }
      expect(got).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
      expect(new Set(replies).size).toBe(TOTAL);
      expect(reconnects).toBeGreaterThan(0);
      await conn.close();
    } finally {
      await proxy.close();
      await h.close();
    }
  }, 60_000);

  it("moves back to a WebSocket once one opens, keeping the session", async () => {
    const h = await startHarness({}, (s) => s.implement(ChatService, handlers));
    try {
      let blocked = true;
      const conn = connect(h.url, {
        upgradeProbeMs: 150,
        reconnect: { baseMs: 5, capMs: 10 },
        webSocket: (url, protocols) => {
          if (blocked) throw new Error("blocked by a proxy");
          return nodeWebSocket(url, protocols);
        },
      });
      await conn.opened();
      expect(conn.transportKind).toBe("http");
      const session = conn.sessionId;
      blocked = false;
      await until(() => conn.transportKind === "websocket", "the move to WebSocket", 5_000);
      expect(conn.sessionId).toBe(session);
      expect((await createClient(ChatService, conn).sendMessage({ roomId: "r", text: "back" })).messageId).toBe("back");
      await conn.close();
    } finally {
      await h.close();
    }
  });

  it("applies the same admission and limits as the WebSocket path", async () => {
    const h = await startHarness(
      {
        authenticate: (req): Principal => {
          if (req.token !== "good") throw new ProtocastError(Code.Unauthenticated, "bad token");
          return { id: "good", scopes: ["chat"] };
        },
      },
      (s) => s.implement(ChatService, handlers),
    );
    try {
      const base = `http://127.0.0.1:${h.port}/protocast`;
      expect((await fetch(`${base}/stream`, { headers: { authorization: "Bearer bad" } })).status).toBe(401);
      expect((await fetch(`${base}/stream`, { headers: { authorization: "Bearer good", cookie: "a=1", origin: "https://evil.example" } })).status).toBe(403);
      expect((await fetch(`${base}/send?t=nope`, { method: "POST", body: "x" })).status).toBe(404);
      // A record over the envelope limit: 413, and the stream ends with 1009.
      const ac = new AbortController();
      const res = await fetch(`${base}/stream`, { headers: { authorization: "Bearer good" }, signal: ac.signal });
      const id = res.headers.get("protocast-transport") ?? "";
      const hello = encodeRecord(RECORD_ENVELOPE, encodeEnvelope({ seq: 0, ackSeq: 0, frame: { case: "hello", value: { version: 1, client: "raw" } } }));
      expect((await fetch(`${base}/send?t=${id}`, { method: "POST", body: hello as unknown as BodyInit })).status).toBe(204);
      const huge = encodeRecord(RECORD_ENVELOPE, new Uint8Array(70_000));
      expect((await fetch(`${base}/send?t=${id}`, { method: "POST", body: huge as unknown as BodyInit })).status).toBe(413);
      const body = new Uint8Array(await res.arrayBuffer());
      // The last record is the close: type 2, then the code 1009.
      const closeAt = body.lastIndexOf(2, body.length - 7);
      expect(body[closeAt]).toBe(2);
      expect((body[closeAt + 5]! << 8) | body[closeAt + 6]!).toBe(1009);
    } finally {
      await h.close();
    }
  });
});
