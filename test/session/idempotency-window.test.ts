import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { IdempotencyWindow, type Outcome } from "../../runtime/session/idempotency-window.js";

const reply = (n: number): Outcome => ({ kind: "reply", payload: new Uint8Array([n]) });

describe("IdempotencyWindow", () => {
  it("runs a key once and answers duplicates with the first outcome", () => {
    const w = new IdempotencyWindow();
    const req = { target: "svc/M", digest: 1 };
    expect(w.begin("alice", "k", req, 0).kind).toBe("run");
    w.complete("alice", "k", reply(7), 1);
    expect(w.begin("alice", "k", req, 2)).toEqual({ kind: "done", outcome: reply(7) });
  });

  it("never answers one principal with another's outcome", () => {
    const w = new IdempotencyWindow();
    const req = { target: "svc/M", digest: 1 };
    w.begin("alice", "k", req, 0);
    w.complete("alice", "k", reply(1), 0);
    expect(w.begin("mallory", "k", req, 0).kind).toBe("run");
  });

  it("refuses the same key for a different request", () => {
    const w = new IdempotencyWindow();
    w.begin("alice", "k", { target: "svc/M", digest: 1 }, 0);
    expect(w.begin("alice", "k", { target: "svc/M", digest: 2 }, 0).kind).toBe("conflict");
    expect(w.begin("alice", "k", { target: "svc/N", digest: 1 }, 0).kind).toBe("conflict");
  });

  it("lets a duplicate wait for the running first request", async () => {
    const w = new IdempotencyWindow();
    const req = { target: "svc/M", digest: 1 };
    w.begin("alice", "k", req, 0);
    const second = w.begin("alice", "k", req, 0);
    expect(second.kind).toBe("wait");
    w.complete("alice", "k", reply(3), 1);
    if (second.kind !== "wait") throw new Error("expected wait");
    expect(await second.outcome).toEqual(reply(3));
  });

  it("forgets transient outcomes so that a retry runs again", () => {
    const w = new IdempotencyWindow();
    const req = { target: "svc/M", digest: 1 };
    w.begin("alice", "k", req, 0);
    w.forget("alice", "k", { kind: "error", code: 4, message: "deadline", reason: "" });
    expect(w.begin("alice", "k", req, 1).kind).toBe("run");
  });

  // Bounds hold whatever the sequence of keys and clock steps.
  test.prop([fc.array(fc.tuple(fc.nat(40), fc.nat(50)), { maxLength: 400 })])("stays within its count and age bounds", (steps) => {
    const limits = { maxKeysPerPrincipal: 10, ttlMs: 100 };
    const w = new IdempotencyWindow(limits);
    let now = 0;
    const completedAt = new Map<string, number>();
    for (const [key, dt] of steps) {
      now += dt;
      const k = `k${key}`;
      const r = w.begin("p", k, { target: "t", digest: 0 }, now);
      if (r.kind === "run") {
        w.complete("p", k, reply(key), now);
        completedAt.set(k, now);
      } else if (r.kind === "done") {
        // A record is only ever served within its age limit.
        expect(now - (completedAt.get(k) ?? -Infinity)).toBeLessThan(limits.ttlMs);
      }
      expect(w.size).toBeLessThanOrEqual(limits.maxKeysPerPrincipal);
    }
  });
});
