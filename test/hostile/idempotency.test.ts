/**
 * Another user's idempotency key returns nothing of theirs (PROTOCOL.md 5.3, 16): records are
 * kept per principal, so a guessed or leaked key runs the caller's own request, whether the
 * owner's call has finished, is still running, or used a different payload.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient } from "protocast/node";
import { ChatService } from "../../generated/acme/chat/v1/chat_protocast.js";
import { startHarness, until, type Harness } from "../support/harness.js";

describe("another principal's idempotency key", () => {
  let h: Harness;
  const runs: string[] = [];
  /** The owner's "slow" call runs until the test opens this gate. */
  let openGate: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));

  beforeAll(async () => {
    h = await startHarness({ authenticate: (req) => ({ id: req.token ?? "nobody", scopes: ["chat"] }) });
    h.server.implement(ChatService, {
      async sendMessage(req, ctx) {
        runs.push(`${ctx.principal.id}:${req.text}`);
        if (req.text.startsWith("slow") && ctx.principal.id === "alice") await gate;
        return { messageId: `${ctx.principal.id}/${req.roomId}/${req.text}/${runs.length}`, sentAtMs: BigInt(runs.length) };
      },
      listRooms: () => ({ rooms: [] }),
    });
  });
  afterAll(() => h.close());

  const clientOf = (token: string) => createClient(ChatService, h.client({ token }));

  it("runs the intruder's own call for a key the owner already completed", async () => {
    const alice = clientOf("alice");
    const mallory = clientOf("mallory");
    const key = "order-4711";
    const hits = h.server.stats().counters.dedupeHits;
    const mine = await alice.sendMessage({ roomId: "private", text: "card 4111" }, { idempotencyKey: key });
    const theirs = await mallory.sendMessage({ roomId: "private", text: "card 4111" }, { idempotencyKey: key });
    expect(mine.messageId.startsWith("alice/")).toBe(true);
    expect(theirs.messageId.startsWith("mallory/")).toBe(true);
    expect(theirs.messageId).not.toBe(mine.messageId);
    expect(runs).toContain("mallory:card 4111");
    // The intruder was not answered from the owner's record.
    expect(h.server.stats().counters.dedupeHits).toBe(hits);
    // The owner's own retry still gets the owner's first result.
    expect((await alice.sendMessage({ roomId: "private", text: "card 4111" }, { idempotencyKey: key })).messageId).toBe(mine.messageId);
  });

  it("neither waits for nor shares a call the owner still has running", async () => {
    const alice = clientOf("alice");
    const mallory = clientOf("mallory");
    const key = "slow-key";
    let ownerDone = false;
    const owner = alice.sendMessage({ roomId: "r", text: "slow secret" }, { idempotencyKey: key }).finally(() => (ownerDone = true));
    await until(() => runs.includes("alice:slow secret"), "the owner's call to start");
    // The owner's call is held until the intruder has its answer: had the intruder waited for
    // it, this would never settle (and the test would time out).
    const intruder = await mallory.sendMessage({ roomId: "r", text: "slow secret" }, { idempotencyKey: key });
    expect(ownerDone).toBe(false);
    openGate();
    const mine = await owner;
    expect(intruder.messageId.startsWith("mallory/")).toBe(true);
    expect(mine.messageId.startsWith("alice/")).toBe(true);
    // Both ran: the intruder's call ran on its own, not a free ride on the owner's.
    expect(runs.filter((r) => r.endsWith(":slow secret")).sort()).toEqual(["alice:slow secret", "mallory:slow secret"]);
  });

  it("does not reveal that the key is taken when the intruder's payload differs", async () => {
    const alice = clientOf("alice");
    const mallory = clientOf("mallory");
    const key = "probe-key";
    await alice.sendMessage({ roomId: "r", text: "original" }, { idempotencyKey: key });
    // Had the records been shared, this would be FAILED_PRECONDITION idempotency_key_reused:
    // an oracle telling the intruder which keys other users have used.
    const theirs = await mallory.sendMessage({ roomId: "r", text: "different" }, { idempotencyKey: key });
    expect(theirs.messageId.startsWith("mallory/r/different/")).toBe(true);
  });
});
