import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readHistory, tailWalkMax, type StoredEvent, type SubjectReader } from "../../runtime/adapters/nats/nats-history.js";
import { channelToken } from "../../runtime/adapters/nats/nats-subjects.js";

// History over a JetStream subject, against a model: a subject's messages sit at scattered
// stream sequences (other channels use the ones in between), the oldest may be trimmed, and
// the answer must match a plain filter of the kept messages, found with few reads.

interface Model {
  readonly messages: StoredEvent[];
  readonly reads: { count: number };
  readonly reader: SubjectReader;
}

function model(count: number, spacing: readonly number[], trimmed: number, size: number, ttlMs: number): Model {
  const messages: StoredEvent[] = [];
  let seq = 0;
  for (let offset = 1; offset <= count; offset++) {
    const prevSeq = seq;
    seq += 1 + spacing[offset % spacing.length]!;
    messages.push({ seq, epoch: "E", offset, time: 1_000 + offset * 10, historySize: size, historyTtlMs: ttlMs, prevSeq, origin: undefined, payload: Uint8Array.of(offset % 256) });
  }
  const kept = messages.slice(trimmed);
  const reads = { count: 0 };
  const next = (from: number): StoredEvent | null => kept.find((m) => m.seq >= from) ?? null;
  return {
    messages: kept,
    reads,
    reader: {
      at: (at) => {
        reads.count++;
        return Promise.resolve(kept.find((m) => m.seq === at) ?? null);
      },
      next: (from) => {
        reads.count++;
        return Promise.resolve(next(from));
      },
      page: (from, n) => {
        reads.count++;
        return Promise.resolve(kept.filter((m) => m.seq >= from).slice(0, n));
      },
    },
  };
}

describe("NATS history reads", () => {
  it("property: matches a filter of the kept messages, in O(log n) reads", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 7 }),
        fc.nat(300),
        fc.integer({ min: 0, max: 400 }),
        fc.constantFrom(0, 500, 2_000),
        fc.nat(320),
        fc.boolean(),
        fc.integer({ min: 1, max: 40 }),
        async (count, spacing, trimmedRaw, size, ttlMs, sinceOffset, sameEpoch, limit) => {
          const trimmed = Math.min(trimmedRaw, count - 1); // the last message always stays
          const m = model(count, spacing, trimmed, size, ttlMs);
          const last = m.messages.at(-1)!;
          const now = last.time + 50;
          const since = { epoch: sameEpoch ? "E" : "old", offset: sinceOffset };
          const got = await readHistory(m.reader, "c", last, since, limit, [], now);

          const wanted = sameEpoch ? sinceOffset + 1 : 1;
          const cutoff = ttlMs > 0 ? now - ttlMs : -Infinity;
          const kept = m.messages.filter((x) => x.offset >= wanted && x.offset > count - size && x.time >= cutoff);
          const first = kept[0]?.offset ?? count + 1;
          expect(got.position).toEqual({ epoch: "E", offset: count });
          expect(got.events.map((e) => e.offset)).toEqual(kept.slice(0, limit).map((x) => x.offset));
          if (!sameEpoch) expect(got.gap).toEqual({ fromOffset: 0, toOffset: first - 1, reason: "epoch_changed" });
          else if (wanted > count || first <= wanted) expect(got.gap).toBeUndefined();
          else expect(got.gap).toEqual({ fromOffset: wanted, toOffset: first - 1, reason: size === 0 ? "history_disabled" : "history_expired" });
          // A walk back from the last message, or a binary search over the sequences and a page.
          expect(m.reads.count).toBeLessThanOrEqual(Math.max(tailWalkMax, Math.ceil(Math.log2(last.seq + 1)) + 3));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads the last few events walking back, without a search", async () => {
    const m = model(100_000, [3, 9, 0], 0, 1_000, 0);
    const last = m.messages.at(-1)!;
    const got = await readHistory(m.reader, "c", last, { epoch: "E", offset: 99_995 }, 100, [], 0);
    expect(got.events.map((e) => e.offset)).toEqual([99_996, 99_997, 99_998, 99_999, 100_000]);
    expect(m.reads.count).toBe(4);
  });

  it("falls back to a search when messages carry no predecessor link", async () => {
    const m = model(50, [2], 0, 1_000, 0);
    const unlinked = m.messages.map((x) => ({ ...x, prevSeq: 0 }));
    const reader: SubjectReader = {
      at: (seq) => Promise.resolve(unlinked.find((x) => x.seq === seq) ?? null),
      next: (seq) => Promise.resolve(unlinked.find((x) => x.seq >= seq) ?? null),
      page: (seq, n) => Promise.resolve(unlinked.filter((x) => x.seq >= seq).slice(0, n)),
    };
    const got = await readHistory(reader, "c", unlinked.at(-1)!, { epoch: "E", offset: 45 }, 100, [], 0);
    expect(got.events.map((e) => e.offset)).toEqual([46, 47, 48, 49, 50]);
    expect(got.gap).toBeUndefined();
  });

  it("starts from a hint: the event after a known one costs one read", async () => {
    const m = model(1_000, [3, 9, 0], 0, 1_000, 0);
    const last = m.messages.at(-1)!;
    const known = m.messages[499]!;
    const got = await readHistory(m.reader, "c", last, { epoch: "E", offset: 500 }, 1, [{ epoch: "E", offset: 500, seq: known.seq }], 0);
    expect(got.events.map((e) => e.offset)).toEqual([501]);
    expect(m.reads.count).toBe(1);
  });
});

describe("channel names as subject tokens", () => {
  it("keeps readable names readable and escapes the rest", () => {
    expect(channelToken("room/42")).toBe("room/42");
    expect(channelToken("a.b c*>%")).toBe("a%2Eb%20c%2A%3E%25");
    expect(channelToken("é")).toBe("%C3%A9");
    expect(channelToken("")).toBe("%");
  });

  it("property: is one-to-one and always a valid single token", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), fc.string({ unit: "binary" }), (a, b) => {
        const ta = channelToken(a);
        expect(ta).toMatch(/^[A-Za-z0-9_\-/%]+$/);
        if (a !== b && new TextEncoder().encode(a).join() !== new TextEncoder().encode(b).join()) expect(ta).not.toBe(channelToken(b));
      }),
      { numRuns: 500 },
    );
  });
});
