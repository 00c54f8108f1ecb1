import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, type Harness } from "../support/harness.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const TOTAL = Number(process.env.CHAOS_TOTAL ?? 10_000);

// Real ws on 127.0.0.1 through a proxy that resets every connection every 200 ms while 10,000
// calls flow up and 10,000 channel events flow down: nothing lost, nothing twice, order kept.
describe("chaos: sockets killed every 200 ms", () => {
  let h: Harness;
  let proxy: TcpProxy;
  const processed: number[] = [];

  beforeAll(async () => {
    h = await startHarness({ authenticate: () => ({ id: "chaos", scopes: ["chat"] }), rateMessagesPerSecond: 100_000, rateMessagesBurst: 100_000 });
    h.server.implement(ChatService, {
      sendMessage(req) {
        processed.push(Number(req.text));
        return { messageId: req.text };
      },
      listRooms: () => ({ rooms: [] }),
    });
    proxy = await startTcpProxy(h.port);
  });
  afterAll(async () => {
    await proxy.close();
    await h.close();
  });

  it("loses nothing, duplicates nothing and keeps order both ways", async () => {
    const conn = connect(`ws://127.0.0.1:${proxy.port}/protocast`, { token: "chaos", reconnect: { baseMs: 5, capMs: 40 } });
    const chat = createClient(ChatService, conn);
    const sub = chat.roomEvents({ roomId: "chaos" });
    await sub.ready;
    const gaps: unknown[] = [];
    sub.on("gap", (g) => gaps.push(g));
    let reconnects = 0;
    conn.on("state", (s) => {
      if (s.newState === "reconnecting") reconnects++;
    });
    const received: number[] = [];
    const reading = (async () => {
      for await (const ev of sub) {
        received.push(Number(ev.text));
        if (received.length === TOTAL) break;
      }
    })();
    const killer = setInterval(() => proxy.cut(), 200);
    const progress = setInterval(() => console.log(`chaos progress: calls ${processed.length}, events ${received.length}, state ${conn.state}, reconnects ${reconnects}`), 2000);
    const deadline = Date.now() + 60_000;
    let lastPublished = 0;
    const publishErrors: string[] = [];
    try {
      // Down: the server publishes in small bursts, and never runs more than 250 events ahead
      // of the reader, so that what a cut leaves unread stays inside the channel's history (500
      // events) however slow a reconnect on a loaded machine is: at 5,000 events a second a
      // 100 ms outage would otherwise outrun it, and the client would rightly report a gap.
      const publishing = (async () => {
        for (let i = 0; i < TOTAL && Date.now() < deadline; i += 50) {
          while (i - received.length > 250 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          for (let j = i; j < i + 50; j++) {
            h.server.publish(ChatService.channels.roomEvents, { roomId: "chaos" }, { text: String(j) }).then(
              (r) => (lastPublished = Math.max(lastPublished, r.offset)),
              (e: unknown) => publishErrors.push(String(e)),
            );
          }
          await new Promise((r) => setTimeout(r, 10)); // spread over the cuts, in real time
        }
      })();
      // Up: 64 calls in flight at a time.
      const replies: number[] = [];
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < TOTAL && Date.now() < deadline) {
          const n = next++;
          const res = await chat.sendMessage({ roomId: "chaos", text: String(n) }, { timeoutMs: 30_000 });
          replies.push(Number(res.messageId));
        }
      };
      await Promise.all([publishing, ...Array.from({ length: 64 }, worker)]);
      // Every event is published by now: the reader must finish, and a reader that stops moving
      // for 10 s fails at once with what each side knows, rather than at the test's timeout.
      let seen = -1;
      let still = 0;
      while (received.length < TOTAL) {
        if (received.length !== seen) {
          seen = received.length;
          still = Date.now();
        } else if (Date.now() - still > 10_000) {
          const s = h.server.stats();
          throw new Error(
            `events stalled at ${received.length} of ${TOTAL} (last ${String(received.at(-1))}); channel offset published ${lastPublished}; ` +
              `publish errors ${publishErrors.length} ${publishErrors.slice(0, 3).join("; ")}; gaps ${gaps.length} ${JSON.stringify(gaps.slice(0, 3))}; client ${conn.state} after ${reconnects} reconnects; ` +
              `server sessions ${s.sessions}, connections ${s.connections}, channels ${s.channels}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await reading;
      expect(replies.length).toBe(TOTAL);
      expect(new Set(replies).size).toBe(TOTAL);
      expect(processed).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
      expect(received).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
      expect(gaps).toEqual([]);
      expect(reconnects).toBeGreaterThan(3);
      console.log(`chaos: ${reconnects} reconnects while ${TOTAL} calls and ${TOTAL} events flowed`);
    } finally {
      clearInterval(killer);
      clearInterval(progress);
      await conn.close();
    }
  }, 90_000);
});
