import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, type Harness } from "../support/harness.js";

// The server's dedupe window for exactly-once calls, over real sockets.
describe("idempotency keys", () => {
  let h: Harness;
  let runs = 0;

  beforeAll(async () => {
    h = await startHarness({ authenticate: (req) => ({ id: req.token ?? "anon", scopes: ["chat"] }) });
    h.server.implement(ChatService, {
      async sendMessage(req, ctx) {
        runs++;
        // The handler takes a while, so that a concurrent duplicate arrives while it runs.
        await new Promise((r) => setTimeout(r, 30));
        return { messageId: `${ctx.principal.id}:${req.text}:${runs}` };
      },
      listRooms: () => ({ rooms: [] }),
    });
  });
  afterAll(() => h.close());

  it("runs a retried call once and returns the first result", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const before = runs;
    const a = await chat.sendMessage({ roomId: "r", text: "once" }, { idempotencyKey: "key-1" });
    const b = await chat.sendMessage({ roomId: "r", text: "once" }, { idempotencyKey: "key-1" });
    expect(b.messageId).toBe(a.messageId);
    expect(runs - before).toBe(1);
  });

  it("makes a concurrent duplicate wait for the first", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    const before = runs;
    const [a, b] = await Promise.all([
      chat.sendMessage({ roomId: "r", text: "twin" }, { idempotencyKey: "key-2" }),
      chat.sendMessage({ roomId: "r", text: "twin" }, { idempotencyKey: "key-2" }),
    ]);
    expect(a.messageId).toBe(b.messageId);
    expect(runs - before).toBe(1);
  });

  it("never returns another principal's result for the same key", async () => {
    const alice = createClient(ChatService, h.client({ token: "alice" }));
    const mallory = createClient(ChatService, h.client({ token: "mallory" }));
    const mine = await alice.sendMessage({ roomId: "r", text: "secret" }, { idempotencyKey: "shared-key" });
    const theirs = await mallory.sendMessage({ roomId: "r", text: "secret" }, { idempotencyKey: "shared-key" });
    expect(mine.messageId.startsWith("alice:")).toBe(true);
    expect(theirs.messageId.startsWith("mallory:")).toBe(true);
  });

  it("refuses the same key with a different payload", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    await chat.sendMessage({ roomId: "r", text: "first" }, { idempotencyKey: "key-3" });
    await expect(chat.sendMessage({ roomId: "r", text: "second" }, { idempotencyKey: "key-3" })).rejects.toMatchObject({
      code: Code.FailedPrecondition,
      reason: "idempotency_key_reused",
    });
  });

  it("refuses an oversized key", async () => {
    const chat = createClient(ChatService, h.client({ token: "alice" }));
    await expect(chat.sendMessage({ roomId: "r", text: "x" }, { idempotencyKey: "k".repeat(129) })).rejects.toMatchObject({
      code: Code.InvalidArgument,
      reason: "idempotency_key_too_long",
    });
  });
});
