/**
 * A re-sync that is still reading history when its connection drops (PROTOCOL.md 6.4). The
 * broker's history is held back through the public Broker interface, so the cut lands inside
 * the re-sync every time: the session resumes on a third connection while the second one's
 * re-sync still waits. Events published while no connection was attached must come from the
 * re-sync that follows, in order, with no gap reported.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryBroker, createClient, connect, type Broker, type Connection } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

/** A memory broker whose history answers wait while the gate is closed. */
function gatedBroker(): { broker: Broker; calls: () => number; close: () => void; open: () => void } {
  const inner = createMemoryBroker();
  let gate: Promise<void> | undefined;
  let release: () => void = () => undefined;
  let calls = 0;
  const broker = new Proxy(inner, {
    get(target, key) {
      if (key === "history") {
        return async (...args: Parameters<Broker["history"]>) => {
          // The read happens at once; its answer is held back, as from a slow broker.
          const answer = await target.history(...args);
          if (gate !== undefined) {
            calls++;
            await gate;
          }
          return answer;
        };
      }
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    broker,
    calls: () => calls,
    close: () => {
      gate = new Promise((r) => (release = r));
    },
    open: () => {
      gate = undefined;
      release();
    },
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("a re-sync cut off while it reads history", () => {
  it("leaves the events of the detached moments to the next re-sync: every event once, in order, no gap", async () => {
    const gated = gatedBroker();
    const h: Harness = await startHarness({ broker: gated.broker, authenticate: () => ({ id: "reader", scopes: ["chat"] }) }, (s) =>
      s.implement(ChatService, { sendMessage: () => ({ messageId: "m" }), listRooms: () => ({ rooms: [] }) }),
    );
    cleanups.push(() => h.close());
    const proxy: TcpProxy = await startTcpProxy(h.port);
    cleanups.push(() => proxy.close());
    const conn: Connection = connect(`ws://127.0.0.1:${proxy.port}/protocast`, { token: "t", reconnect: { baseMs: 10, capMs: 20 } });
    cleanups.push(() => conn.close());
    let opens = 0;
    conn.on("state", (s) => {
      if (s.newState === "open") opens++;
    });
    const sub = createClient(ChatService, conn).roomEvents({ roomId: "race" });
    await sub.ready;
    const gaps: unknown[] = [];
    sub.on("gap", (g) => gaps.push(g));
    const TOTAL = 300;
    const received: number[] = [];
    const reading = (async () => {
      for await (const ev of sub) {
        received.push(Number(ev.text));
        if (received.length === TOTAL) break;
      }
    })();
    let published = 0;
    let stopAt = 60;
    const publishing = (async () => {
      while (published < TOTAL) {
        if (published >= stopAt) {
          await new Promise((r) => setTimeout(r, 2));
          continue;
        }
        await h.server.publish(ChatService.channels.roomEvents, { roomId: "race" }, { text: String(published) });
        published++;
        await new Promise((r) => setTimeout(r, 1));
      }
    })();
    await until(() => published === 60 && received.length === 60, "the first 60 events");
    // First cut: the resume's re-sync asks history for what the client has not acknowledged,
    // and waits there.
    gated.close();
    stopAt = 120;
    proxy.cut();
    await until(() => gated.calls() >= 1 && opens >= 2, "the re-sync to wait on history");
    await until(() => published === 120, "events while the re-sync waits");
    // Second cut, inside that re-sync. Events published before the client is back are delivered
    // to no connection: only history has them.
    stopAt = 180;
    proxy.cut();
    await until(() => opens >= 3, "the second resume");
    await until(() => published === 180, "events after the second resume");
    gated.open();
    stopAt = TOTAL;
    await publishing;
    await until(() => received.length === TOTAL, "every event", 10_000).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${received.length} received, the last ${String(received.at(-1))}; gaps ${JSON.stringify(gaps)}`);
    });
    await reading;
    expect(gaps).toEqual([]);
    expect(received).toEqual(Array.from({ length: TOTAL }, (_, i) => i));
  });
});
