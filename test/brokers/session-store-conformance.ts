import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createMemorySessionStore, type SessionStore, type SessionWrite, type StoredSession } from "protocast";
import { sleep, uniqueName } from "./services.js";

/**
 * Opens a store on the engine under test. Every store one `make` returns shares the engine's
 * data: each stands for another node (the in-memory store returns one shared instance).
 */
export type MakeSessionStore = () => Promise<SessionStore>;

export interface SessionStoreTraits {
  /** fast-check runs of the model property. Default 25. */
  readonly propertyRuns?: number;
}

const ttl = 60_000;
const A = "node-a";
const B = "node-b";

type Frame = readonly [number, Uint8Array];

/** A claim's result with plain Uint8Array frames, for toEqual across Buffer and Uint8Array. */
function plain(s: StoredSession | undefined): StoredSession | undefined {
  return s === undefined ? undefined : { ...s, frames: s.frames.map(([seq, b]) => [seq, new Uint8Array(b)] as const) };
}

function first(w: Partial<SessionWrite> & { id: string }): SessionWrite {
  return { create: { token: "tok", principal: '{"id":"u1"}' }, frames: [], outSeq: 0, inSeq: 0, ackSeq: 0, ...w };
}

function next(w: Partial<SessionWrite> & { id: string }): SessionWrite {
  return { frames: [], outSeq: 0, inSeq: 0, ackSeq: 0, ...w };
}

/** The behaviour every SessionStore must show. Sessions are named per test, so tests share stores. */
export function sessionStoreConformance(name: string, make: MakeSessionStore, traits: SessionStoreTraits = {}): void {
  describe(`session store conformance: ${name}`, () => {
    const opened: SessionStore[] = [];
    const open = async (): Promise<SessionStore> => {
      const s = await make();
      opened.push(s);
      return s;
    };
    const nodes = (): Promise<[SessionStore, SessionStore]> => Promise.all([open(), open()]);
    const id = (): string => uniqueName("sess-");
    afterAll(async () => {
      await Promise.all(opened.map((s) => s.close()));
    });

    it("gives back on claim exactly what was written: fields and frames, byte for byte, in seq order", async () => {
      const [a, b] = await nodes();
      const s = id();
      const big = randomBytes(60 * 1024);
      big.fill(0, 100, 5_000); // long runs of zero bytes
      big[0] = 0;
      big[big.length - 1] = 0;
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      const frames: Frame[] = [[1, new Uint8Array(0)], [2, big], [3, all], [4, Uint8Array.of(0)]];
      expect(await a.write(A, [first({ id: s, create: { token: "t-ü", principal: '{"id":"ü ✓"}' }, frames: frames.slice(0, 2), outSeq: 2, inSeq: 7 })], ttl)).toEqual([true]);
      expect(await a.write(A, [next({ id: s, frames: frames.slice(2), outSeq: 4, inSeq: 9, subs: '["room/1"]' })], ttl)).toEqual([true]);
      const got = plain(await b.claim(s, B, ttl));
      expect(got).toEqual({ id: s, token: "t-ü", principal: '{"id":"ü ✓"}', outSeq: 4, inSeq: 9, frames: frames.map(([q, f]) => [q, new Uint8Array(f)]), subs: '["room/1"]', calls: "[]" });
      expect(Buffer.from(got!.frames[1]![1]).equals(big)).toBe(true);
      // A later write keeps what it does not mention, replaces what it does.
      expect(await b.write(B, [next({ id: s, outSeq: 4, inSeq: 10, ackSeq: 4, calls: '["c1"]' })], ttl)).toEqual([true]);
      expect(plain(await a.claim(s, A, ttl))).toMatchObject({ token: "t-ü", inSeq: 10, frames: [], subs: '["room/1"]', calls: '["c1"]' });
    });

    it("drops the frames up to ackSeq and keeps the rest", async () => {
      const [a] = await nodes();
      const s = id();
      const f = (seq: number): Frame => [seq, Uint8Array.of(seq, 0, seq)];
      expect(await a.write(A, [first({ id: s, frames: [1, 2, 3, 4, 5].map(f), outSeq: 5 })], ttl)).toEqual([true]);
      expect(await a.write(A, [next({ id: s, frames: [f(6)], outSeq: 6, ackSeq: 3 })], ttl)).toEqual([true]);
      expect(plain(await a.claim(s, A, ttl))?.frames).toEqual([4, 5, 6].map(f));
      // The ack of a write also drops the frames the write itself brings.
      expect(await a.write(A, [next({ id: s, frames: [f(7), f(8)], outSeq: 8, ackSeq: 7 })], ttl)).toEqual([true]);
      expect(plain(await a.claim(s, A, ttl))?.frames).toEqual([f(8)]);
      expect(await a.write(A, [next({ id: s, outSeq: 8, ackSeq: 8 })], ttl)).toEqual([true]);
      expect((await a.claim(s, A, ttl))?.frames).toEqual([]);
    });

    it("refuses a write without create to a session it does not hold, and stores nothing", async () => {
      const [a] = await nodes();
      const s = id();
      expect(await a.write(A, [next({ id: s, frames: [[1, Uint8Array.of(1)]], outSeq: 1 })], ttl)).toEqual([false]);
      expect(await a.claim(s, A, ttl)).toBeUndefined();
      expect(await a.write(A, [], ttl)).toEqual([]);
    });

    it("answers undefined to the claim of a session never stored", async () => {
      const [a] = await nodes();
      expect(await a.claim(id(), A, ttl)).toBeUndefined();
    });

    it("refuses the old owner's writes once another node claimed the session", async () => {
      const [a, b] = await nodes();
      const s = id();
      expect(await a.write(A, [first({ id: s, frames: [[1, Uint8Array.of(1)]], outSeq: 1 })], ttl)).toEqual([true]);
      expect(await a.write(A, [next({ id: s, frames: [[2, Uint8Array.of(2)]], outSeq: 2 })], ttl)).toEqual([true]);
      expect(plain(await b.claim(s, B, ttl))?.frames).toEqual([[1, Uint8Array.of(1)], [2, Uint8Array.of(2)]]);
      expect(await a.write(A, [next({ id: s, frames: [[3, Uint8Array.of(3)]], outSeq: 3 })], ttl)).toEqual([false]);
      // Not even create takes a session back from its owner.
      expect(await a.write(A, [first({ id: s, outSeq: 3 })], ttl)).toEqual([false]);
      expect(await b.write(B, [next({ id: s, frames: [[3, Uint8Array.of(33)]], outSeq: 3 })], ttl)).toEqual([true]);
      // And back: a claim by A makes B's writes the refused ones.
      expect(plain(await a.claim(s, A, ttl))?.frames.map(([q]) => q)).toEqual([1, 2, 3]);
      expect(await b.write(B, [next({ id: s, outSeq: 3 })], ttl)).toEqual([false]);
      expect(await a.write(A, [next({ id: s, frames: [[4, Uint8Array.of(4)]], outSeq: 4 })], ttl)).toEqual([true]);
      expect(plain(await b.claim(s, B, ttl))).toMatchObject({ outSeq: 4, frames: [[1, Uint8Array.of(1)], [2, Uint8Array.of(2)], [3, Uint8Array.of(33)], [4, Uint8Array.of(4)]] });
    });

    it("decides on the session as it is now, not as this instance last saw it", async () => {
      const [x, y] = await nodes();
      const s = id();
      expect(await x.write(B, [first({ id: s })], ttl)).toEqual([true]);
      expect(await y.claim(s, A, ttl)).toBeDefined();
      expect(await x.write(A, [next({ id: s, outSeq: 1 })], ttl)).toEqual([true]);
      await y.remove(A, [s]);
      expect(await x.write(A, [next({ id: s, outSeq: 2 })], ttl)).toEqual([false]);
      expect(await x.write(B, [first({ id: s, outSeq: 2 })], ttl)).toEqual([true]);
      await y.remove(B, [s]);
      expect(await x.write(A, [first({ id: s, outSeq: 3 })], ttl)).toEqual([true]);
      expect(await y.claim(s, B, ttl)).toMatchObject({ outSeq: 3 });
    });

    it("removes a session only for its owner", async () => {
      const [a, b] = await nodes();
      const s = id();
      const other = id();
      expect(await a.write(A, [first({ id: s }), first({ id: other })], ttl)).toEqual([true, true]);
      await b.remove(B, [s, other, id()]);
      expect(await a.claim(s, A, ttl)).toBeDefined();
      await a.remove(A, [s]);
      expect(await b.claim(s, B, ttl)).toBeUndefined();
      expect(await a.write(A, [next({ id: s })], ttl)).toEqual([false]);
      expect(await b.claim(other, B, ttl)).toBeDefined(); // untouched by the removal of s
      await a.remove(A, []);
    });

    it("forgets a session ttlMs after its last write or claim", async () => {
      const [a, b] = await nodes();
      const s = id();
      // Margins of about 450 ms on each side, so that a loaded machine's late timers do not
      // decide the outcome.
      const short = 1_200;
      expect(await a.write(A, [first({ id: s, frames: [[1, Uint8Array.of(1)]], outSeq: 1 })], short)).toEqual([true]);
      await sleep(750);
      expect(await b.claim(s, B, short)).toBeDefined(); // renews
      await sleep(750); // past the write's ttl, within the claim's
      expect(await b.claim(s, B, 450)).toBeDefined();
      await sleep(1_200);
      expect(await a.claim(s, A, ttl)).toBeUndefined();
      expect(await b.write(B, [next({ id: s, outSeq: 1 })], ttl)).toEqual([false]);
      // A new session under the id starts empty.
      expect(await a.write(A, [first({ id: s, frames: [[5, Uint8Array.of(5)]], outSeq: 5 })], ttl)).toEqual([true]);
      expect(plain(await b.claim(s, B, ttl))).toMatchObject({ outSeq: 5, frames: [[5, Uint8Array.of(5)]], subs: "[]", calls: "[]" });
    });

    it("answers each write of a mixed batch on its own", async () => {
      const [a, b] = await nodes();
      const [mine, taken, unknown, fresh] = [id(), id(), id(), id()];
      expect(await a.write(A, [first({ id: mine }), first({ id: taken, frames: [[1, Uint8Array.of(1)]], outSeq: 1 })], ttl)).toEqual([true, true]);
      await b.claim(taken, B, ttl);
      const results = await a.write(
        A,
        [
          next({ id: mine, frames: [[1, Uint8Array.of(10)]], outSeq: 1 }),
          next({ id: taken, frames: [[2, Uint8Array.of(2)]], outSeq: 2 }),
          next({ id: unknown, frames: [[1, Uint8Array.of(1)]], outSeq: 1 }),
          first({ id: fresh, frames: [[1, Uint8Array.of(7)]], outSeq: 1 }),
          next({ id: mine, frames: [[2, Uint8Array.of(11)]], outSeq: 2 }), // the same session again, after the first
        ],
        ttl,
      );
      expect(results).toEqual([true, false, false, true, true]);
      expect(plain(await b.claim(mine, B, ttl))).toMatchObject({ outSeq: 2, frames: [[1, Uint8Array.of(10)], [2, Uint8Array.of(11)]] });
      expect(plain(await b.claim(taken, B, ttl))).toMatchObject({ outSeq: 1, frames: [[1, Uint8Array.of(1)]] });
      expect(await b.claim(unknown, B, ttl)).toBeUndefined();
      expect(plain(await b.claim(fresh, B, ttl))?.frames).toEqual([[1, Uint8Array.of(7)]]);
    });

    const text = fc.oneof(fc.constantFrom("", "[]", '["a"]', '{"id":"ü"}'), fc.string({ unit: "grapheme", maxLength: 12 }));
    const item = fc.record({
      s: fc.nat(2),
      create: fc.option(fc.record({ token: text, principal: text }), { nil: undefined }),
      frames: fc.array(fc.uint8Array({ maxLength: 48 }), { maxLength: 4 }),
      /** Of the seqs assigned so far, the share acknowledged, in percent. */
      ack: fc.nat(100),
      inSeq: fc.nat(1_000),
      subs: fc.option(text, { nil: undefined }),
      calls: fc.option(text, { nil: undefined }),
    });
    const op = fc.oneof(
      { weight: 5, arbitrary: fc.record({ kind: fc.constant("write" as const), node: fc.nat(1), via: fc.nat(1), items: fc.array(item, { minLength: 1, maxLength: 4 }) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("claim" as const), node: fc.nat(1), via: fc.nat(1), s: fc.nat(2) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), node: fc.nat(1), via: fc.nat(1), ss: fc.uniqueArray(fc.nat(2), { maxLength: 3 }) }) },
    );

    it("matches the in-memory store over random writes, acks, claims and removals by two nodes", async () => {
      // Two owners and two store instances, paired at random: one instance may serve both owners.
      const real = await nodes();
      const owners = [A, B];
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
          const model = createMemorySessionStore();
          const run = uniqueName("prop-");
          const ids = [0, 1, 2].map((i) => `${run}-${i}`);
          const seqs = [0, 0, 0];
          for (const o of ops) {
            const owner = owners[o.node]!;
            if (o.kind === "write") {
              const writes = o.items.map((it): SessionWrite => {
                const frames = it.frames.map((f) => [++seqs[it.s]!, f] as const);
                const outSeq = seqs[it.s]!;
                return { id: ids[it.s]!, create: it.create, frames, outSeq, inSeq: it.inSeq, ackSeq: Math.floor((outSeq * it.ack) / 100), subs: it.subs, calls: it.calls };
              });
              expect(await real[o.via]!.write(owner, writes, ttl)).toEqual(await model.write(owner, writes, ttl));
            } else if (o.kind === "claim") {
              expect(plain(await real[o.via]!.claim(ids[o.s]!, owner, ttl))).toEqual(plain(await model.claim(ids[o.s]!, owner, ttl)));
            } else {
              const gone = o.ss.map((i) => ids[i]!);
              await real[o.via]!.remove(owner, gone);
              await model.remove(owner, gone);
            }
          }
          for (const s of ids) expect(plain(await real[0].claim(s, A, ttl))).toEqual(plain(await model.claim(s, A, ttl)));
        }),
        { numRuns: traits.propertyRuns ?? 25 },
      );
    });
  });
}
