import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, connect, createClient, type Connection } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import type { RoomEventsResponse } from "../../generated/acme/chat/v1/chat_pb.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startTcpProxy } from "../support/tcp-proxy.js";

// Channels over real WebSockets on 127.0.0.1: fan-out, order, unsubscribe, presence.
describe("channels over ws", () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness({
      authenticate: (req) => ({ id: req.token ?? "anon", scopes: req.token === "outsider" ? [] : ["chat"] }),
    });
    h.server.implement(ChatService, {
      async sendMessage(req, ctx) {
        const at = await ctx.publish(ChatService.channels.roomEvents, { roomId: req.roomId }, { text: req.text, author: ctx.principal.id });
        return { messageId: String(at.offset) };
      },
      listRooms: () => ({ rooms: [] }),
      publishTyping: (_params, message, ctx) => ({ user: ctx.principal.id, typing: message.typing }),
    });
  });
  afterAll(() => h.close());

  it("delivers every publish to 50 members, in order, once", async () => {
    const room = "fifty";
    const conns: Connection[] = [];
    const received: string[][] = [];
    const readers: Promise<void>[] = [];
    const total = 200;
    for (let i = 0; i < 50; i++) {
      const conn = h.client({ token: `member-${i}` });
      conns.push(conn);
      const sub = createClient(ChatService, conn).roomEvents({ roomId: room });
      const got: string[] = [];
      received.push(got);
      readers.push(
        (async () => {
          for await (const ev of sub) {
            got.push(ev.text);
            if (got.length === total) break;
          }
        })(),
      );
      await sub.ready;
    }
    const sent: string[] = [];
    for (let i = 0; i < total; i++) {
      sent.push(`m${i}`);
      void h.server.publish(ChatService.channels.roomEvents, { roomId: room }, { text: `m${i}` });
    }
    await Promise.all(readers);
    for (const got of received) expect(got).toEqual(sent);
    await Promise.all(conns.map((c) => c.close()));
  });

  it("stops delivery after unsubscribe", async () => {
    const chat = createClient(ChatService, h.client({ token: "u1" }));
    const sub = chat.roomEvents({ roomId: "unsub" });
    await sub.ready;
    const got: RoomEventsResponse[] = [];
    const reading = (async () => {
      for await (const ev of sub) got.push(ev);
    })();
    await chat.sendMessage({ roomId: "unsub", text: "before" });
    await until(() => got.length === 1, "the first event");
    await sub.unsubscribe();
    await reading;
    // The watcher proves publishes still flow after the first subscriber left.
    const watcher = createClient(ChatService, h.client({ token: "u2" })).roomEvents({ roomId: "unsub" });
    await watcher.ready;
    await chat.sendMessage({ roomId: "unsub", text: "after" });
    const it = watcher[Symbol.asyncIterator]();
    expect((await it.next()).value?.text).toBe("after");
    expect(got.map((e) => e.text)).toEqual(["before"]);
  });

  it("sends join and leave events, including a leave when a member disconnects", async () => {
    const room = "presence";
    const alice = createClient(ChatService, h.client({ token: "alice" }));
    const subA = alice.roomEvents({ roomId: room });
    await subA.ready;
    expect(Array.from(subA.members.values()).map((m) => m.principal)).toEqual(["alice"]);
    const joined: string[] = [];
    const left: string[] = [];
    subA.on("presence", (p) => {
      joined.push(...p.joined.map((m) => m.principal));
      left.push(...p.left.map((m) => m.principal));
    });
    const bobConn = h.client({ token: "bob" });
    const subB = createClient(ChatService, bobConn).roomEvents({ roomId: room });
    await subB.ready;
    expect(new Set(Array.from(subB.members.values(), (m) => m.principal))).toEqual(new Set(["alice", "bob"]));
    await until(() => joined.includes("bob"), "bob's join");
    await bobConn.close();
    await until(() => left.includes("bob"), "bob's leave");
    expect(Array.from(subA.members.values()).map((m) => m.principal)).toEqual(["alice"]);
  });

  it("lets clients publish to a client-publish channel through the server's hook", async () => {
    const alice = createClient(ChatService, h.client({ token: "alice" }));
    const bob = createClient(ChatService, h.client({ token: "bob" }));
    const sub = bob.typing({ roomId: "t" });
    await sub.ready;
    await alice.publishTyping({ roomId: "t" }, { user: "mallory", typing: true }, { confirm: true });
    const first = await sub[Symbol.asyncIterator]().next();
    // The hook stamps the real publisher: nobody types under someone else's name.
    expect(first.value).toMatchObject({ user: "alice", typing: true });
  });

  it("refuses a subscription without the read scope and reports a bad channel name", async () => {
    const outsider = createClient(ChatService, h.client({ token: "outsider" }));
    await expect(outsider.roomEvents({ roomId: "secret" }).ready).rejects.toMatchObject({ code: Code.PermissionDenied });
    const member = createClient(ChatService, h.client({ token: "m" }));
    expect(() => member.roomEvents({ roomId: "a/b" })).toThrow(/room_id|roomId/);
  });

  it("recovers events published while the link was down", async () => {
    const proxy = await startTcpProxy(h.port);
    try {
      const conn = connect(`ws://127.0.0.1:${proxy.port}/protocast`, { token: "rec", reconnect: { baseMs: 20, capMs: 100 } });
      const chat = createClient(ChatService, conn);
      const sub = chat.roomEvents({ roomId: "recover" });
      await sub.ready;
      const got: string[] = [];
      const gaps: unknown[] = [];
      sub.on("gap", (g) => gaps.push(g));
      const reading = (async () => {
        for await (const ev of sub) {
          got.push(ev.text);
          if (got.length === 6) break;
        }
      })();
      const room = { roomId: "recover" };
      for (const t of ["a", "b", "c"]) await h.server.publish(ChatService.channels.roomEvents, room, { text: t });
      await until(() => got.length === 3, "the first three events");
      const states: string[] = [];
      conn.on("state", (s) => states.push(s.newState));
      proxy.cut();
      for (const t of ["d", "e", "f"]) await h.server.publish(ChatService.channels.roomEvents, room, { text: t });
      await reading;
      expect(got).toEqual(["a", "b", "c", "d", "e", "f"]);
      expect(gaps).toEqual([]);
      expect(states).toEqual(expect.arrayContaining(["reconnecting", "open"]));
      await conn.close();
    } finally {
      await proxy.close();
    }
  });
});
