import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeBatch, encodeBatch } from "../../runtime/adapters/nats/nats-batch.js";
import { eventsOf, readHistory, tailWalkMax, type StoredEvent, type SubjectReader } from "../../runtime/adapters/nats/nats-history.js";
import { channelToken } from "../../runtime/adapters/nats/nats-subjects.js";

// History over a JetStream subject, against a model: a subject's messages sit at scattered
// stream sequences (other channels use the ones in between), a message may hold several
// events, the oldest messages may be trimmed, and the answer must match a plain filter of the
// kept events, found with few reads.

interface Model {
  readonly messages: StoredEvent[];
  readonly reads: { count: number };
  readonly reader: SubjectReader;
}

/** `count` events in messages of batches[i % batches.length] events (the last one may hold fewer). */
function model(count: number, spacing: readonly number[], trimmed: number, size: number, ttlMs: number, batches: readonly number[] = [1]): Model {
  const messages: StoredEvent[] = [];
  let seq = 0;
  for (let offset = 0, i = 0; offset < count; i++) {
    const n = Math.min(batches[i % batches.length]!, count - offset);
    const payloads = Array.from({ length: n }, (_, k) => Uint8Array.of((offset + 1 + k) % 256, 7));
    offset += n;
    const prevSeq = seq;
    seq += 1 + spacing[i % spacing.length]!;
    const payload = n === 1 ? payloads[0]! : encodeBatch(payloads);
    messages.push({ seq, epoch: "E", offset, count: n, time: 1_000 + offset * 10, historySize: size, historyTtlMs: ttlMs, prevSeq, origin: undefined, payload });
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
        fc.oneof(fc.constant([1]), fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 5 })),
        async (count, spacing, trimmedRaw, size, ttlMs, sinceOffset, sameEpoch, limit, batches) => {
          const all = model(count, spacing, 0, size, ttlMs, batches);
          const trimmed = Math.min(trimmedRaw, all.messages.length - 1); // the last message always stays
          const m = model(count, spacing, trimmed, size, ttlMs, batches);
          const last = m.messages.at(-1)!;
          const now = last.time + 50;
          const since = { epoch: sameEpoch ? "E" : "old", offset: sinceOffset };
          const got = await readHistory(m.reader, "c", last, since, limit, [], now);

          const wanted = sameEpoch ? sinceOffset + 1 : 1;
          const cutoff = ttlMs > 0 ? now - ttlMs : -Infinity;
          const kept = m.messages.filter((x) => x.time >= cutoff).flatMap((x) => eventsOf("c", x)).filter((x) => x.offset >= wanted && x.offset > count - size);
          const first = kept[0]?.offset ?? count + 1;
          expect(got.position).toEqual({ epoch: "E", offset: count });
          expect(got.events.map((e) => e.offset)).toEqual(kept.slice(0, limit).map((x) => x.offset));
          expect(got.events.map((e) => Array.from(e.payload))).toEqual(kept.slice(0, limit).map((x) => [x.offset % 256, 7]));
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

describe("messages of several events", () => {
  it("property: a body gives back the payloads it was made of, and nothing else", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 2, maxLength: 30 }), fc.integer({ min: -3, max: 3 }), (payloads, skew) => {
        const body = encodeBatch(payloads);
        expect(decodeBatch(body, payloads.length)?.map((p) => Array.from(p))).toEqual(payloads.map((p) => Array.from(p)));
        if (skew !== 0 && payloads.length + skew > 1) expect(decodeBatch(body, payloads.length + skew)).toBeUndefined();
        if (body.length > 0) expect(decodeBatch(body.subarray(0, body.length - 1), payloads.length)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it("splits a message into its events and walks back across messages", async () => {
    const m = model(100, [2, 5], 0, 1_000, 0, [16]);
    const last = m.messages.at(-1)!;
    expect(last).toMatchObject({ offset: 100, count: 4 });
    const got = await readHistory(m.reader, "c", last, { epoch: "E", offset: 90 }, 100, [], 0);
    expect(got.events.map((e) => e.offset)).toEqual([91, 92, 93, 94, 95, 96, 97, 98, 99, 100]);
    expect(got.events.map((e) => e.payload[0])).toEqual([91, 92, 93, 94, 95, 96, 97, 98, 99, 100]);
    expect(got.gap).toBeUndefined();
    expect(m.reads.count).toBe(1); // the message of 81-96 before the last
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
