import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, type Harness } from "../support/harness.js";

// Typed RPC over real WebSockets on 127.0.0.1: results, typed errors, deadlines, scopes.
describe("unary calls over ws", () => {
  let h: Harness;
  const aborted: string[] = [];

  beforeAll(async () => {
    h = await startHarness({
      authenticate: (req) => {
        if (req.token === "reader") return { id: "reader", scopes: ["other"] };
        return { id: req.token ?? "nobody", scopes: ["chat"] };
      },
    });
    h.server.implement(ChatService, {
      async sendMessage(req, ctx) {
        if (req.text === "") throw new ProtocastError(Code.InvalidArgument, "text is empty", { reason: "empty_text" });
        if (req.text === "boom") throw new Error("handler bug");
        if (req.text === "slow") {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 2_000);
            ctx.signal.addEventListener("abort", () => {
              clearTimeout(t);
              aborted.push(String(ctx.signal.reason));
              resolve();
            });
          });
        }
        return { messageId: `${ctx.principal.id}:${req.roomId}:${req.text}`, sentAtMs: BigInt(Date.now()) };
      },
      listRooms: () => ({ rooms: [{ roomId: "lobby", members: 3 }] }),
    });
  });
  afterAll(() => h.close());

  it("returns the typed reply", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const res = await chat.sendMessage({ roomId: "lobby", text: "hi" });
    expect(res.messageId).toBe("alice:lobby:hi");
    expect(typeof res.sentAtMs).toBe("bigint");
    const rooms = await chat.listRooms({});
    expect(rooms.rooms).toEqual([expect.objectContaining({ roomId: "lobby", members: 3 })]);
  });

  it("carries the handler's error code, message and reason", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const err = await chat.sendMessage({ roomId: "lobby", text: "" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocastError);
    expect((err as ProtocastError).code).toBe(Code.InvalidArgument);
    expect((err as ProtocastError).reason).toBe("empty_text");
    expect((err as ProtocastError).message).toBe("[invalid_argument] text is empty");
  });

  it("turns a plain exception into UNKNOWN, without its text, and keeps the connection", async () => {
    const conn = h.client({ token: "alice" });
    const chat = createClient(ChatService, conn);
    const err = await chat.sendMessage({ roomId: "lobby", text: "boom" }).catch((e: unknown) => e);
    expect((err as ProtocastError).code).toBe(Code.Unknown);
    expect((err as ProtocastError).message).not.toContain("handler bug");
    expect((await chat.sendMessage({ roomId: "lobby", text: "after" })).messageId).toBe("alice:lobby:after");
    expect(conn.state).toBe("open");
  });

  it("fails with DEADLINE_EXCEEDED at the client's deadline and aborts the handler", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const started = Date.now();
    const err = await chat.sendMessage({ roomId: "lobby", text: "slow" }, { timeoutMs: 150 }).catch((e: unknown) => e);
    expect((err as ProtocastError).code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_500);
    await expect.poll(() => aborted.length).toBeGreaterThan(0);
  });

  it("fails each of many calls at its own deadline, never before, while the calls around them get their replies", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const started = Date.now();
    const timeouts = [120, 40, 260, 40, 190, 75];
    const slow = timeouts.map((timeoutMs) =>
      chat.sendMessage({ roomId: "lobby", text: "slow" }, { timeoutMs }).then(
        () => ({ code: undefined as Code | undefined, after: Date.now() - started }),
        (e: unknown) => ({ code: (e as ProtocastError).code as Code | undefined, after: Date.now() - started }),
      ),
    );
    const fast = await Promise.all(Array.from({ length: 200 }, (_, i) => chat.sendMessage({ roomId: "lobby", text: `m${i}` })));
    expect(fast.map((r) => r.messageId)).toEqual(Array.from({ length: 200 }, (_, i) => `alice:lobby:m${i}`));
    const outcomes = await Promise.all(slow);
    for (const [i, o] of outcomes.entries()) {
      expect(o.code).toBe(Code.DeadlineExceeded);
      expect(o.after).toBeGreaterThanOrEqual(timeouts[i]!);
    }
    // A call made after the deadlines fired still has one of its own.
    const err = await chat.sendMessage({ roomId: "lobby", text: "slow" }, { timeoutMs: 30 }).catch((e: unknown) => e);
    expect((err as ProtocastError).code).toBe(Code.DeadlineExceeded);
  });

  it("cancels a call through an AbortSignal", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const ac = new AbortController();
    const p = chat.sendMessage({ roomId: "lobby", text: "slow" }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: Code.Canceled });
  });

  it("refuses a call whose declared scope the principal lacks", async () => {
    const chat = createClient(ChatService, h.client({ token: "reader" }));
    await expect(chat.sendMessage({ roomId: "lobby", text: "x" })).rejects.toMatchObject({ code: Code.PermissionDenied });
  });

  it("answers UNIMPLEMENTED for a service the server does not implement", async () => {
    const { ShowcaseService } = await import("../../generated/acme/showcase/v1/showcase_protocast.js");
    const conn = h.client({ token: "alice" });
    const defs = Array.from(ShowcaseService.byPath.values()).filter((d) => d.kind === "call");
    const first = defs[0];
    if (first === undefined || first.kind !== "call") throw new Error("showcase has no calls");
    await expect(conn.call(first, {})).rejects.toMatchObject({ code: Code.Unimplemented });
  });
});
