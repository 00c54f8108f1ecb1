import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, connect, createClient, type ConnectionEvents } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, until, type Harness } from "../support/harness.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

// Sessions over real sockets: a dropped link is resumed and nothing acknowledged is lost.
const GRACE_MS = 400;

describe("session resume", () => {
  let h: Harness;
  let proxy: TcpProxy;
  const runs = new Map<string, number>();
  const gates = new Map<string, () => void>();
  const hold = (name: string) => new Promise<void>((resolve) => gates.set(name, resolve));
  const release = (name: string) => gates.get(name)?.();

  beforeAll(async () => {
    h = await startHarness({ authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }), graceMs: GRACE_MS });
    h.server.implement(ChatService, {
      async sendMessage(req) {
        runs.set(req.text, (runs.get(req.text) ?? 0) + 1);
        if (req.text.startsWith("hold")) await hold(req.text);
        return { messageId: `${req.text}#${runs.get(req.text)}` };
      },
      // Not idempotent: only a resumed session can deliver its answer after a drop.
      async listRooms() {
        runs.set("list", (runs.get("list") ?? 0) + 1);
        await hold(`list${runs.get("list")}`);
        return { rooms: [{ roomId: "r", members: 1 }] };
      },
    });
    proxy = await startTcpProxy(h.port);
  });
  afterAll(async () => {
    await proxy.close();
    await h.close();
  });

  const viaProxy = (token: string) => connect(`ws://127.0.0.1:${proxy.port}/protocast`, { token, reconnect: { baseMs: 10, capMs: 50 } });

  it("delivers the answer of a call that finished while the link was down, and runs it once", async () => {
    const conn = viaProxy("resumer");
    const chat = createClient(ChatService, conn);
    await conn.opened();
    const firstSession = conn.sessionId;
    const pending = chat.listRooms({});
    await until(() => runs.get("list") === 1, "the handler to start");
    proxy.cut();
    release("list1");
    const res = await pending;
    expect(res.rooms[0]?.roomId).toBe("r");
    expect(runs.get("list")).toBe(1);
    expect(conn.sessionId).toBe(firstSession);
    await conn.close();
  });

  it("delivers reliable pushes sent while the link was down, in order, once", async () => {
    const conn = viaProxy("pushee");
    const chat = createClient(ChatService, conn);
    await conn.opened();
    const got: string[] = [];
    const reading = (async () => {
      for await (const n of chat.notices()) {
        got.push(n.text);
        if (got.length === 20) break;
      }
    })();
    for (let i = 0; i < 10; i++) h.server.push(ChatService.events.notices, "pushee", { text: `n${i}` });
    await until(() => got.length === 10, "the first pushes");
    proxy.block();
    proxy.cut();
    await until(() => conn.state === "reconnecting", "the drop to be noticed");
    // The session is detached and the client cannot get back yet: pushes go to its buffer.
    for (let i = 10; i < 20; i++) h.server.push(ChatService.events.notices, "pushee", { text: `n${i}` });
    proxy.unblock();
    await reading;
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`));
    await conn.close();
  });

  it("reports the lost session past the grace period and retries only idempotent calls", async () => {
    const conn = viaProxy("late");
    const chat = createClient(ChatService, conn);
    await conn.opened();
    const lost: ConnectionEvents["sessionLost"][] = [];
    conn.on("sessionLost", (l) => lost.push(l));
    const idem = chat.sendMessage({ roomId: "r", text: "hold-idem" });
    await until(() => runs.get("hold-idem") === 1, "the idempotent handler to start");
    const plain = chat.listRooms({});
    await until(() => (runs.get("list") ?? 0) >= 2, "the plain handler to start");
    // Keep the client away until the server has ended this principal's session at the grace
    // period (the server's session count could fall for another test's session instead).
    const sessionsOfLate = (): number => h.server.locate("late").reduce((n, node) => n + node.sessions, 0);
    expect(sessionsOfLate()).toBe(1);
    proxy.block();
    proxy.cut();
    await until(() => sessionsOfLate() === 0, "the session to end past the grace period");
    proxy.unblock();
    release("hold-idem");
    release(`list${runs.get("list")}`);
    const plainErr = await plain.catch((e: unknown) => e);
    expect(plainErr).toBeInstanceOf(ProtocastError);
    expect((plainErr as ProtocastError).code).toBe(Code.Unavailable);
    expect((plainErr as ProtocastError).reason).toBe("session_lost");
    // The idempotent call is sent again with its key; the server answers from its record.
    const res = await idem;
    expect(res.messageId).toBe("hold-idem#1");
    expect(runs.get("hold-idem")).toBe(1);
    await until(() => lost.length === 1, "the sessionLost event");
    expect(["expired", "unknown"]).toContain(lost[0]?.reason);
    expect(lost[0]?.failedCalls).toBe(1);
    await conn.close();
  });

  it("keeps a dropped member in its room through the grace period, then sends its leave", async () => {
    const watcher = createClient(ChatService, h.client({ token: "watcher" }));
    const sub = watcher.roomEvents({ roomId: "grace" });
    await sub.ready;
    const left: string[] = [];
    sub.on("presence", (p) => left.push(...p.left.map((m) => m.principal)));
    const conn = connect(`ws://127.0.0.1:${proxy.port}/protocast`, { token: "dropper", reconnect: false });
    const dropper = createClient(ChatService, conn);
    await dropper.roomEvents({ roomId: "grace" }).ready;
    await until(() => sub.members.size === 2, "two members");
    const cutAt = Date.now();
    proxy.cut();
    await until(() => left.includes("dropper"), "the leave after the grace period", 3_000);
    // Not before: the server counts the grace period from when it saw the link drop, after the
    // cut (10 ms for clocks that round differently).
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(GRACE_MS - 10);
    expect(left).toEqual(["dropper"]);
  });
});
