import { fc, test } from "@fast-check/vitest";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Code, ProtocastError, createMemoryIdempotencyStore } from "protocast";
import { IdempotencyWindow, type Outcome } from "../../runtime/session/idempotency-window.js";

const req = { target: "chat.v1.Chat/Send", digest: 7 };
const reply = (n: number): Outcome => ({ kind: "reply", payload: Uint8Array.of(n & 0xff, n >> 8) });
const transient: Outcome = { kind: "error", code: Code.Unavailable, message: "gone", reason: "" };
const long = { leaseMs: 60_000 };

describe("IdempotencyWindow expiry", () => {
  it("expires every principal's records on a sweep, with no further call, and deletes their maps", () => {
    const w = new IdempotencyWindow({ ttlMs: 100 });
    for (let p = 0; p < 50; p++) {
      expect(w.begin(`user-${p}`, "k", req, p).kind).toBe("run");
      w.complete(`user-${p}`, "k", reply(p), p);
    }
    expect(w.size).toBe(50);
    expect(w.scopeCount).toBe(50);
    expect(w.sweep(148)).toBe(49); // completed at 0..49, due at 100..149
    expect(w.size).toBe(1);
    expect(w.sweep(149)).toBe(1);
    expect(w.size).toBe(0);
    expect(w.scopeCount).toBe(0);
  });

  it("keeps a record until its ttl has passed, and keeps running records whatever their age", () => {
    const w = new IdempotencyWindow({ ttlMs: 100 });
    w.begin("alice", "done", req, 0);
    w.complete("alice", "done", reply(1), 10);
    w.begin("alice", "running", req, 0);
    w.sweep(109);
    expect(w.begin("alice", "done", req, 109)).toEqual({ kind: "done", outcome: reply(1) });
    w.sweep(110);
    expect(w.size).toBe(1);
    w.sweep(1_000_000);
    expect(w.size).toBe(1); // the running one
    expect(w.begin("alice", "running", req, 1_000_000).kind).toBe("wait");
    w.forget("alice", "running", transient);
    expect(w.scopeCount).toBe(0);
  });

  it("never serves an expired record that no sweep has reached yet", () => {
    const w = new IdempotencyWindow({ ttlMs: 100 });
    w.begin("alice", "k", req, 0);
    w.complete("alice", "k", reply(1), 0);
    expect(w.begin("alice", "k", req, 100).kind).toBe("run");
  });

  it("bounds the completed records of a principal, evicting its oldest", () => {
    const w = new IdempotencyWindow({ maxKeysPerPrincipal: 3 });
    for (let k = 0; k < 5; k++) {
      w.begin("alice", `k${k}`, req, k);
      w.complete("alice", `k${k}`, reply(k), k);
    }
    expect(w.size).toBe(3);
    expect(w.begin("alice", "k1", req, 10).kind).toBe("run");
    expect(w.begin("alice", "k4", req, 10)).toEqual({ kind: "done", outcome: reply(4) });
  });

  it("bounds the records of all principals, evicting the oldest completed one, never a running one", () => {
    const w = new IdempotencyWindow({ maxRecords: 3 });
    w.begin("a", "running", req, 0);
    w.begin("b", "k", req, 1);
    w.complete("b", "k", reply(1), 1);
    w.begin("c", "k", req, 2);
    w.complete("c", "k", reply(2), 2);
    expect(w.begin("d", "k", req, 3).kind).toBe("run"); // evicts b's record, the oldest completed
    expect(w.size).toBe(3);
    expect(w.scopeCount).toBe(3); // b's map went with its last record
    expect(w.begin("c", "k", req, 4)).toEqual({ kind: "done", outcome: reply(2) });
    expect(w.begin("e", "k", req, 4).kind).toBe("run"); // evicts c's
    expect(w.begin("f", "k", req, 4)).toEqual({ kind: "full" }); // a, d, e are all running
    expect(w.size).toBe(3);
  });

  it("rejects bad limits with a typed error naming the option", () => {
    for (const [name, value] of [["ttlMs", 0], ["maxRecords", 1.5], ["maxKeysPerPrincipal", -1]] as const) {
      const e = (() => {
        try {
          new IdempotencyWindow({ [name]: value });
        } catch (caught) {
          return caught;
        }
        return undefined;
      })();
      expect(e).toBeInstanceOf(ProtocastError);
      expect(e).toMatchObject({ code: Code.InvalidArgument });
      expect((e as Error).message).toContain(`${name} must be an integer >= 1, got ${value}`);
    }
  });
});

describe("embedded idempotency store: one sweep timer", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("releases records on its own timer while nobody calls, and close() stops the timer", async () => {
    vi.useFakeTimers();
    const timersBefore = vi.getTimerCount();
    const store = createMemoryIdempotencyStore({ ttlMs: 1_000, now: () => Date.now() });
    expect(vi.getTimerCount()).toBe(timersBefore + 1); // one timer for the whole store
    for (let p = 0; p < 200; p++) {
      expect(await store.begin(`user-${p}`, "k", req, long)).toEqual({ kind: "run" });
      await store.complete(`user-${p}`, "k", reply(p));
    }
    expect(vi.getTimerCount()).toBe(timersBefore + 1); // none per record or per principal
    await vi.advanceTimersByTimeAsync(999);
    expect(store.size).toBe(200);
    await vi.advanceTimersByTimeAsync(100 + 1); // ttl, plus one sweep period (ttl / 10)
    expect(store.size).toBe(0);
    expect(store.window.scopeCount).toBe(0);
    await store.close();
    expect(vi.getTimerCount()).toBe(timersBefore);
  });

  it("refuses a new request with RESOURCE_EXHAUSTED when every record is running", async () => {
    const store = createMemoryIdempotencyStore({ maxRecords: 2 });
    try {
      await store.begin("a", "1", req, long);
      await store.begin("b", "1", req, long);
      const refused = store.begin("c", "1", req, long);
      await expect(refused).rejects.toBeInstanceOf(ProtocastError);
      await expect(refused).rejects.toMatchObject({ code: Code.ResourceExhausted, reason: "idempotency_window_full" });
      await expect(refused).rejects.toThrow(/maxRecords/);
      await store.complete("a", "1", reply(1));
      expect(await store.begin("c", "1", req, long)).toEqual({ kind: "run" }); // a's completed record made room
    } finally {
      await store.close();
    }
  });
});

// ---- property: the window against a plain model of PROTOCOL.md 5.3 rule 7 -------------------

type Op =
  | { readonly t: "begin"; readonly p: number; readonly k: number }
  | { readonly t: "complete" | "forget"; readonly i: number }
  | { readonly t: "advance"; readonly dt: number }
  | { readonly t: "sweep" };

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant("begin" as const), p: fc.nat(3), k: fc.nat(4) }), weight: 5 },
  { arbitrary: fc.record({ t: fc.constant("complete" as const), i: fc.nat(20) }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant("forget" as const), i: fc.nat(20) }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant("advance" as const), dt: fc.nat(60) }), weight: 2 },
  { arbitrary: fc.constant({ t: "sweep" as const }), weight: 1 },
);

interface ModelRecord {
  readonly scope: string;
  readonly key: string;
  /** Undefined while running. */
  outcome: Outcome | undefined;
  completedAt: number;
  /** Completion order, for "oldest". */
  order: number;
}

/** The rules written as plainly as possible: a list of records, searched linearly. */
class Model {
  records: ModelRecord[] = [];
  private order = 0;
  constructor(readonly limits: { maxKeysPerPrincipal: number; maxRecords: number; ttlMs: number }) {}

  expire(now: number): void {
    this.records = this.records.filter((r) => r.outcome === undefined || now - r.completedAt < this.limits.ttlMs);
  }

  begin(scope: string, key: string, now: number): "run" | "done" | "wait" | "full" {
    this.expire(now);
    const r = this.records.find((x) => x.scope === scope && x.key === key);
    if (r !== undefined) return r.outcome === undefined ? "wait" : "done";
    if (this.records.length >= this.limits.maxRecords && !this.evictOldest(() => true)) return "full";
    this.records.push({ scope, key, outcome: undefined, completedAt: 0, order: 0 });
    return "run";
  }

  complete(r: ModelRecord, outcome: Outcome, now: number): void {
    r.outcome = outcome;
    r.completedAt = now;
    r.order = ++this.order;
    const mine = this.records.filter((x) => x.scope === r.scope && x.outcome !== undefined);
    if (mine.length > this.limits.maxKeysPerPrincipal) this.evictOldest((x) => x.scope === r.scope);
  }

  private evictOldest(which: (r: ModelRecord) => boolean): boolean {
    const done = this.records.filter((x) => x.outcome !== undefined && which(x));
    if (done.length === 0) return false;
    const oldest = done.reduce((a, b) => (a.order < b.order ? a : b));
    this.records = this.records.filter((x) => x !== oldest);
    return true;
  }
}

describe("IdempotencyWindow property", () => {
  const limitsArb = fc.record({ maxKeysPerPrincipal: fc.integer({ min: 1, max: 4 }), maxRecords: fc.integer({ min: 1, max: 10 }), ttlMs: fc.integer({ min: 1, max: 150 }) });

  // Whatever the operations: the window answers as the model does (so a completed key within
  // its ttl, and not evicted by a bound, is always deduplicated), the counts never exceed the
  // bounds, every waiting duplicate gets the first request's outcome, and once everything
  // finished and ttlMs passed with no call the window is empty, maps included.
  test.prop([limitsArb, fc.array(op, { maxLength: 200, size: "max" })], { numRuns: 300 })("matches the model and stays within its bounds", async (limits, ops) => {
    const w = new IdempotencyWindow(limits);
    const m = new Model(limits);
    let now = 0;
    let n = 0;
    const waits: { promise: Promise<Outcome>; record: ModelRecord }[] = [];
    const finals = new Map<ModelRecord, Outcome>();
    const running = (): ModelRecord[] => m.records.filter((r) => r.outcome === undefined);
    for (const o of ops) {
      switch (o.t) {
        case "begin": {
          const scope = `p${o.p}`;
          const key = `k${o.k}`;
          const expected = m.begin(scope, key, now);
          const got = w.begin(scope, key, req, now);
          expect(got.kind).toBe(expected);
          const r = m.records.find((x) => x.scope === scope && x.key === key);
          if (got.kind === "done") expect(got.outcome).toEqual(r!.outcome);
          if (got.kind === "wait") waits.push({ promise: got.outcome, record: r! });
          break;
        }
        case "complete":
        case "forget": {
          const live = running();
          if (live.length === 0) break;
          const r = live[o.i % live.length]!;
          if (o.t === "complete") {
            const outcome = reply(++n);
            w.complete(r.scope, r.key, outcome, now);
            m.complete(r, outcome, now);
            finals.set(r, outcome);
          } else {
            w.forget(r.scope, r.key, transient);
            m.records = m.records.filter((x) => x !== r);
            finals.set(r, transient);
          }
          break;
        }
        case "advance":
          now += o.dt;
          break;
        case "sweep":
          w.sweep(now);
          break;
      }
      // Expired records a sweep has not reached yet are invisible (begin checks), so compare
      // after a sweep; the bounds hold before it too.
      expect(w.size).toBeLessThanOrEqual(limits.maxRecords);
      w.sweep(now);
      m.expire(now);
      expect(w.size).toBe(m.records.length);
      for (let p = 0; p < 4; p++) {
        const completed = m.records.filter((r) => r.scope === `p${p}` && r.outcome !== undefined).length;
        expect(completed).toBeLessThanOrEqual(limits.maxKeysPerPrincipal);
      }
      expect(w.scopeCount).toBe(new Set(m.records.map((r) => r.scope)).size);
    }
    for (const r of running()) {
      const outcome = reply(++n);
      w.complete(r.scope, r.key, outcome, now);
      finals.set(r, outcome);
    }
    for (const { promise, record } of waits) expect(await promise).toEqual(finals.get(record));
    now += limits.ttlMs;
    w.sweep(now);
    expect(w.size).toBe(0);
    expect(w.scopeCount).toBe(0);
  });

  // With bounds that never bind, the dedupe invariant in its plainest form: every key
  // completed less than ttlMs ago is answered from its record, never run again.
  test.prop([fc.array(fc.tuple(fc.nat(5), fc.nat(7), fc.nat(30)), { maxLength: 300, size: "max" })])("deduplicates every completed key within its ttl", (steps) => {
    const ttlMs = 100;
    const w = new IdempotencyWindow({ ttlMs });
    const completedAt = new Map<string, { at: number; outcome: Outcome }>();
    let now = 0;
    for (const [p, k, dt] of steps) {
      now += dt;
      if (dt % 4 === 0) w.sweep(now);
      const id = `p${p}/k${k}`;
      const got = w.begin(`p${p}`, `k${k}`, req, now);
      const c = completedAt.get(id);
      if (c !== undefined && now - c.at < ttlMs) expect(got).toEqual({ kind: "done", outcome: c.outcome });
      else expect(got.kind).toBe("run");
      if (got.kind === "run") {
        const outcome = reply(now);
        w.complete(`p${p}`, `k${k}`, outcome, now);
        completedAt.set(id, { at: now, outcome });
      }
    }
  });
});
