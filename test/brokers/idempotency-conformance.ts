import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { Code, type IdempotencyStore, type StoreBeginResult } from "protocast";
import type { Outcome, RequestFingerprint } from "../../runtime/session/idempotency-window.js";
import { sleep, uniqueName } from "./services.js";

/** Stores on one engine; for a shared engine each open() is another node's instance. */
export interface IdempotencyEngine {
  open(): Promise<IdempotencyStore>;
  /** Closes what open() made and removes the engine's data. */
  close(): Promise<void>;
}

export type MakeEngine = (limits: { ttlMs: number; maxKeysPerPrincipal: number; pollMs: number }) => Promise<IdempotencyEngine>;

export interface EngineTraits {
  /** Instances share records and leases expire (Redis, NATS); the embedded store is one node. */
  readonly shared: boolean;
  /** Whether maxKeysPerPrincipal is enforced. */
  readonly boundsKeys: boolean;
  /** fast-check runs of the property. Default 10. */
  readonly propertyRuns?: number;
}

const pollMs = 5;
/**
 * Long enough for a duplicate begun on a shared engine to have read the running record (one
 * round trip), even on a loaded machine. One that reads it only after a forget() is a new
 * request, and runs.
 */
const settleMs = 150;
const fp: RequestFingerprint = { target: "chat.v1.Chat/Send", digest: 0x1234_5678_9abc };
const long = { leaseMs: 60_000 };
const reply = (...bytes: number[]): Outcome => ({ kind: "reply", payload: Uint8Array.from(bytes) });
const transient: Outcome = { kind: "error", code: Code.Unavailable, message: "node shutting down", reason: "shutdown" };
const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

/** `p`, or a failure after `ms`: a store that loses a duplicate fails the test instead of hanging it. */
function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Tags each begin so a race tells which one answered. */
const tagged = (i: number, p: Promise<StoreBeginResult>): Promise<{ i: number; r: StoreBeginResult }> => p.then((r) => ({ i, r }));

/**
 * The behaviour every IdempotencyStore must show. Each test has an engine (key prefix,
 * bucket) and principals of its own.
 */
export function idempotencyConformance(name: string, make: MakeEngine, traits: EngineTraits): void {
  describe(`idempotency conformance: ${name}`, () => {
    const engines: IdempotencyEngine[] = [];
    const engine = async (limits: { ttlMs?: number; maxKeysPerPrincipal?: number } = {}): Promise<IdempotencyEngine> => {
      const e = await make({ ttlMs: 600_000, maxKeysPerPrincipal: 10_000, pollMs, ...limits });
      engines.push(e);
      return e;
    };
    const nodes = async (n: number, limits?: { ttlMs?: number; maxKeysPerPrincipal?: number }): Promise<IdempotencyStore[]> => {
      const e = await engine(limits);
      return Promise.all(Array.from({ length: n }, () => e.open()));
    };
    const principal = (): string => uniqueName("user-");
    afterAll(async () => {
      await Promise.all(engines.map((e) => e.close()));
    });
    // Tests that do not apply to an engine are left out, not skipped: CI counts skips as failures.
    const itIf = (applies: boolean, title: string, body: () => Promise<void>): void => {
      if (applies) it(title, body);
    };

    it("runs the first request, answers duplicates with its outcome and refuses another request under the key", async () => {
      const [a, b] = await nodes(2);
      const p = principal();
      expect(await a!.begin(p, "k1", fp, long)).toEqual({ kind: "run" });
      expect(await b!.begin(p, "k1", { ...fp, target: "chat.v1.Chat/Edit" }, long)).toEqual({ kind: "conflict" });
      expect(await b!.begin(p, "k1", { ...fp, digest: fp.digest + 1 }, long)).toEqual({ kind: "conflict" });
      await a!.complete(p, "k1", reply(1, 2, 3));
      expect(await b!.begin(p, "k1", fp, long)).toEqual({ kind: "done", outcome: reply(1, 2, 3) });
      expect(await a!.begin(p, "k1", fp, long)).toEqual({ kind: "done", outcome: reply(1, 2, 3) });
      expect(await b!.begin(p, "k1", { ...fp, digest: 7 }, long)).toEqual({ kind: "conflict" });

      const error: Outcome = { kind: "error", code: Code.FailedPrecondition, message: "ünïcødé ✓ \u0000 message", reason: "" };
      expect(await a!.begin(p, "k2", fp, long)).toEqual({ kind: "run" });
      await a!.complete(p, "k2", error);
      expect(await b!.begin(p, "k2", fp, long)).toEqual({ kind: "done", outcome: error });
    });

    it("scopes keys to their principal, whatever characters principal and key hold", async () => {
      const [a, b] = await nodes(2);
      const base = principal();
      // Pairs that naive concatenation, a lossy encoding or a hash tag would mix up.
      const pairs: [string, string][] = [
        [base, "k"],
        [`${base}-other`, "k"],
        [`${base}:a`, "b:c"],
        [`${base}:a:b`, "c"],
        [`${base}{x}`, "}{"],
        [`${base}`, ""],
        [`${base}.*>`, "key with spaces/ünï"],
        [`${base}\uD800`, "lone\uDC00"],
        [`${base}\uFFFD`, "lone\uFFFD"],
      ];
      // Completed one by one: two pairs sharing a record would show as "done" with the wrong outcome.
      for (const [i, [p, k]] of pairs.entries()) {
        expect(await a!.begin(p, k, fp, long), `${p} / ${k}`).toEqual({ kind: "run" });
        await a!.complete(p, k, reply(i));
      }
      for (const [i, [p, k]] of pairs.entries()) expect(await b!.begin(p, k, fp, long), `${p} / ${k}`).toEqual({ kind: "done", outcome: reply(i) });
      // Another principal's key is no conflict either, whatever request it carries.
      expect(await b!.begin(`${base}-third`, "k", { ...fp, target: "x" }, long)).toEqual({ kind: "run" });
    });

    it("lets exactly one of two nodes beginning a key at once run it; the other gets its outcome", async () => {
      const [a, b] = await nodes(2);
      const p = principal();
      for (let k = 0; k < 10; k++) {
        const key = `race-${k}`;
        const begins = [tagged(0, a!.begin(p, key, fp, long)), tagged(1, b!.begin(p, key, fp, long))];
        const first = await Promise.race(begins);
        expect(first.r).toEqual({ kind: "run" });
        const runner = [a!, b!][first.i]!;
        await sleep(4 * pollMs);
        const other = begins[1 - first.i]!;
        let settled = false;
        void other.then(() => (settled = true));
        await sleep(0);
        expect(settled, "the duplicate waits while the first runs").toBe(false);
        await runner.complete(p, key, reply(k, 0, k));
        expect((await within(5_000, other)).r).toEqual({ kind: "done", outcome: reply(k, 0, k) });
      }
    });

    it("rejects a waiting duplicate with its signal's reason and leaves no timer behind", async () => {
      const [a, b] = await nodes(2);
      const p = principal();
      expect(await a!.begin(p, "k", fp, long)).toEqual({ kind: "run" });
      await sleep(settleMs);
      const before = timeouts();
      const abort = new AbortController();
      const waiting = b!.begin(p, "k", fp, { ...long, signal: abort.signal });
      const outcome = waiting.then(
        () => "resolved",
        (e: unknown) => e,
      );
      await sleep(settleMs);
      const reason = new Error("client went away");
      abort.abort(reason);
      expect(await outcome).toBe(reason);
      await sleep(4 * pollMs);
      expect(timeouts()).toBeLessThanOrEqual(before);

      // Already aborted: no wait at all.
      const gone = new AbortController();
      gone.abort(new Error("already gone"));
      await expect(b!.begin(p, "k", fp, { ...long, signal: gone.signal })).rejects.toThrow("already gone");
      // The record is untouched: the runner's outcome still reaches later duplicates.
      await a!.complete(p, "k", reply(9));
      expect(await b!.begin(p, "k", fp, long)).toEqual({ kind: "done", outcome: reply(9) });
    });

    itIf(traits.shared, "lets exactly one of several nodes take over a key whose lease ran out; the stale runner's outcome is dropped", async () => {
      const [stale, ...takers] = await nodes(4);
      const p = principal();
      expect(await stale!.begin(p, "k", fp, { leaseMs: 100 })).toEqual({ kind: "run" });
      await sleep(200);
      const begins = takers.flatMap((t, i) => [tagged(2 * i, t.begin(p, "k", fp, long)), tagged(2 * i + 1, t.begin(p, "k", fp, long))]);
      const first = await Promise.race(begins);
      expect(first.r).toEqual({ kind: "run" });
      await sleep(settleMs);
      // Its node came back: it ran too, but the key is no longer its to complete.
      await stale!.complete(p, "k", reply(6, 6, 6));
      const winner = takers[Math.floor(first.i / 2)]!;
      await winner.complete(p, "k", reply(1));
      const all = await within(5_000, Promise.all(begins));
      expect(all.filter((x) => x.r.kind === "run")).toHaveLength(1);
      for (const x of all) if (x.i !== first.i) expect(x.r).toEqual({ kind: "done", outcome: reply(1) });
      expect(await stale!.begin(p, "k", fp, long)).toEqual({ kind: "done", outcome: reply(1) });
    });

    it("forget: a waiting duplicate gets the transient outcome, and the next request runs again", async () => {
      const [a, b] = await nodes(2);
      const p = principal();
      expect(await a!.begin(p, "k", fp, long)).toEqual({ kind: "run" });
      const waiting = b!.begin(p, "k", fp, long);
      await sleep(settleMs);
      await a!.forget(p, "k", transient);
      expect(await within(5_000, waiting)).toEqual({ kind: "done", outcome: transient });
      expect(await b!.begin(p, "k", fp, long)).toEqual({ kind: "run" });
      // A forgotten key is free, also for a different request.
      await b!.forget(p, "k", transient);
      expect(await a!.begin(p, "k", { ...fp, digest: 1 }, long)).toEqual({ kind: "run" });
      await a!.complete(p, "k", reply(2));
      expect(await b!.begin(p, "k", { ...fp, digest: 1 }, long)).toEqual({ kind: "done", outcome: reply(2) });
      // complete() and forget() of a key the store does not run change nothing.
      await b!.forget(p, "k", transient);
      await b!.complete(p, "k2", reply(3));
      expect(await a!.begin(p, "k", { ...fp, digest: 1 }, long)).toEqual({ kind: "done", outcome: reply(2) });
      expect(await a!.begin(p, "k2", fp, long)).toEqual({ kind: "run" });
    });

    it("drops completed records after ttlMs", async () => {
      const ttlMs = 1_000;
      const [a, b] = await nodes(2, { ttlMs });
      const p = principal();
      expect(await a!.begin(p, "k", fp, long)).toEqual({ kind: "run" });
      await a!.complete(p, "k", reply(1));
      const completed = Date.now();
      await sleep(ttlMs / 2);
      expect(await b!.begin(p, "k", fp, long)).toEqual({ kind: "done", outcome: reply(1) });
      let r: StoreBeginResult;
      do {
        await sleep(50);
        r = await b!.begin(p, "k", fp, long);
      } while (r.kind === "done" && Date.now() - completed < ttlMs + 3_000);
      expect(r).toEqual({ kind: "run" });
      expect(Date.now() - completed).toBeGreaterThanOrEqual(ttlMs - 50);
    });

    itIf(traits.boundsKeys, "keeps at most maxKeysPerPrincipal completed records, the newest", async () => {
      const [a, b] = await nodes(2, { maxKeysPerPrincipal: 3 });
      const p = principal();
      for (let k = 0; k < 5; k++) {
        expect(await a!.begin(p, `k${k}`, fp, long)).toEqual({ kind: "run" });
        await a!.complete(p, `k${k}`, reply(k));
        await sleep(3); // distinct completion times
      }
      for (let k = 4; k >= 2; k--) expect(await b!.begin(p, `k${k}`, fp, long)).toEqual({ kind: "done", outcome: reply(k) });
      for (let k = 0; k < 2; k++) expect(await b!.begin(p, `k${k}`, fp, long)).toEqual({ kind: "run" });
      // Another principal has a window of its own.
      expect(await a!.begin(`${p}-2`, "k0", fp, long)).toEqual({ kind: "run" });
    });

    it("returns payload bytes exactly: empty, with zeros, 60 KiB", async () => {
      const [a, b] = await nodes(2);
      const p = principal();
      const big = Uint8Array.from({ length: 60 * 1024 }, (_, i) => (i * 7919) >>> 3);
      const payloads = [new Uint8Array(0), Uint8Array.of(0), Uint8Array.of(0, 0, 255, 0, 1, 0), big];
      for (const [i, payload] of payloads.entries()) {
        expect(await a!.begin(p, `p${i}`, fp, long)).toEqual({ kind: "run" });
        await a!.complete(p, `p${i}`, { kind: "reply", payload });
      }
      for (const [i, payload] of payloads.entries()) {
        const r = await b!.begin(p, `p${i}`, fp, long);
        if (r.kind !== "done" || r.outcome.kind !== "reply") throw new Error(`expected a stored reply, got ${JSON.stringify(r)}`);
        expect(r.outcome.payload).toBeInstanceOf(Uint8Array);
        expect(r.outcome.payload.byteLength).toBe(payload.byteLength);
        expect(Buffer.compare(r.outcome.payload, payload)).toBe(0);
      }
    });

    it("property: outcomes reach every later duplicate unchanged; a key never has two runners", async () => {
      const [n0, n1] = await nodes(2);
      const stores = [n0!, n1!];
      const step = fc.record({
        op: fc.constantFrom("begin", "begin", "both", "complete", "complete", "forget"),
        node: fc.nat(1),
        key: fc.nat(1),
        size: fc.nat(40),
      });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 30, size: "max" }), async (steps) => {
          const p = `${principal()}-${run++}`;
          const model = new Map<number, { runner: number | undefined; done: Outcome | undefined }>();
          const waiters: { key: number; fresh: boolean; settled: boolean; result: Promise<StoreBeginResult> }[] = [];
          const abort = new AbortController();
          const wait = (key: number, result: Promise<StoreBeginResult>): void => {
            const w = { key, fresh: true, settled: false, result };
            void result.then(
              () => (w.settled = true),
              () => (w.settled = true),
            );
            waiters.push(w);
          };
          try {
            for (const [i, s] of steps.entries()) {
              const m = model.get(s.key) ?? { runner: undefined, done: undefined };
              model.set(s.key, m);
              const key = `key-${s.key}`;
              const begin = (node: number): Promise<StoreBeginResult> => stores[node]!.begin(p, key, fp, { ...long, signal: abort.signal });
              if (s.op === "begin" || s.op === "both") {
                const begun = s.op === "begin" ? [tagged(s.node, begin(s.node))] : [tagged(0, begin(0)), tagged(1, begin(1))];
                if (m.done !== undefined) {
                  for (const b of begun) expect((await within(5_000, b)).r).toEqual({ kind: "done", outcome: m.done });
                } else if (m.runner !== undefined) {
                  for (const b of begun) wait(s.key, b.then((x) => x.r));
                } else {
                  const first = await within(5_000, Promise.race(begun));
                  expect(first.r).toEqual({ kind: "run" });
                  m.runner = first.i;
                  if (s.op === "both") wait(s.key, begun[1 - first.i]!.then((x) => x.r));
                }
                continue;
              }
              if (m.runner === undefined) continue;
              const mine = waiters.filter((w) => w.key === s.key);
              const outcome = s.op === "complete" ? { kind: "reply" as const, payload: Uint8Array.from({ length: s.size }, (_, j) => (i * 31 + j) & 0xff) } : transient;
              // Duplicates must have seen the run before it is forgotten, or they are new requests.
              if (s.op === "forget" && mine.some((w) => w.fresh)) {
                await sleep(settleMs);
                for (const w of waiters) w.fresh = false;
              }
              for (const w of mine) expect(w.settled, "a duplicate answered while the first still ran").toBe(false);
              if (s.op === "complete") await stores[m.runner]!.complete(p, key, outcome);
              else await stores[m.runner]!.forget(p, key, outcome);
              for (const w of mine) expect(await within(5_000, w.result)).toEqual({ kind: "done", outcome });
              waiters.splice(0, waiters.length, ...waiters.filter((w) => w.key !== s.key));
              m.runner = undefined;
              m.done = s.op === "complete" ? outcome : undefined;
            }
            for (const w of waiters) expect(w.settled, "a duplicate answered while the first still ran").toBe(false);
          } finally {
            abort.abort(new Error("property run over"));
            await Promise.allSettled(waiters.map((w) => w.result));
          }
        }),
        { numRuns: traits.propertyRuns ?? 10 },
      );
    }, 120_000);
  });
}
