import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ProtocastError, type ChannelHistoryOptions } from "protocast";
import { createNatsBroker, type NatsBrokerOptions } from "../../runtime/adapters/nats/nats-broker.js";
import type { StoredEvent } from "../../runtime/adapters/nats/nats-history.js";
import { createStreamReads } from "../../runtime/adapters/nats/nats-stream.js";
import { channelSubjects } from "../../runtime/adapters/nats/nats-subjects.js";
import { describeBrokerConformance, type OutageNode, type TestNode } from "./conformance.js";
import { startOutageProxy } from "./outage-proxy.js";
import { hostPort, natsUrl, probe, skipReason, uniqueName, until } from "./services.js";

const down = skipReason("NATS", await probe(natsUrl));
const server = `${hostPort(natsUrl).host}:${hostPort(natsUrl).port}`;

describe.skipIf(down !== undefined)("NATS broker", () => {
  const stream = uniqueName("PCTEST_").toUpperCase();
  const prefix = uniqueName("pctest");
  const options = (extra: NatsBrokerOptions = {}): NatsBrokerOptions => ({ stream, subjectPrefix: prefix, ...extra });
  let admin: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    admin = await connect({ servers: server });
    jsm = await jetstreamManager(admin);
  });
  afterAll(async () => {
    await admin?.close();
  });

  // Each node has a connection of its own, so the test can count what reaches it.
  const node = async (extra: NatsBrokerOptions = {}): Promise<TestNode> => {
    const nc = await connect({ servers: server });
    const broker = await createNatsBroker(options({ ...extra, connection: nc }));
    return {
      broker,
      received: () => nc.stats().inMsgs,
      async close() {
        await broker.close();
        await nc.close();
      },
    };
  };

  describeBrokerConformance({
    name: "nats",
    node,
    async loseHistory(channel) {
      await jsm.streams.purge(stream, { filter: channelSubjects(prefix, channel).history });
    },
    // What the adapter stores, written straight into the stream with no fan-out.
    async publishUnseen(channel: string, payload: Uint8Array, o: ChannelHistoryOptions) {
      const subject = channelSubjects(prefix, channel).history;
      const last = await jsm.direct.getMessage(stream, { last_by_subj: subject });
      if (last === null) throw new Error("publishUnseen needs a channel that has an epoch");
      const epoch = last.header.get("Protocast-Epoch");
      const offset = Number(last.header.get("Protocast-Offset")) + 1;
      const h = headers();
      h.set("Protocast-Epoch", epoch);
      h.set("Protocast-Offset", String(offset));
      h.set("Protocast-History", `${o.historySize} ${o.historyTtlMs}`);
      h.set("Protocast-Prev", String(last.seq));
      const origin = last.header.get("Protocast-Origin");
      if (origin !== "") h.set("Protocast-Origin", origin);
      await jetstream(admin).publish(subject, payload, { headers: h, expect: { lastSubjectSequence: last.seq } });
      return { epoch, offset };
    },
    async outageNode(outageWaitMs): Promise<OutageNode> {
      const proxy = await startOutageProxy(hostPort(natsUrl).port, hostPort(natsUrl).host);
      const broker = await createNatsBroker(options({ servers: `127.0.0.1:${proxy.port}`, outageWaitMs }));
      return {
        broker,
        down: () => proxy.down(),
        up: () => proxy.up(),
        swallowReplies: () => proxy.swallowReplies(),
        async close() {
          await broker.close();
          await proxy.close();
        },
      };
    },
    reportsGaps: true,
    remembersEpochs: true,
    propertyRuns: 8,
    cleanup: () => Promise.resolve(),
  });

  describe("NATS specifics", () => {
    const keep = { historySize: 1_000, historyTtlMs: 0 };

    it("reads a long page through a consumer it removes afterwards", async () => {
      const n = await node();
      try {
        const ch = uniqueName("long/");
        for (let i = 1; i <= 300; i++) await n.broker.publish(ch, Uint8Array.of(i % 256), keep);
        const { epoch } = await n.broker.position(ch);
        const h = await n.broker.history(ch, { epoch, offset: 20 }, 200);
        expect(h.events.map((e) => e.offset)).toEqual(Array.from({ length: 200 }, (_, i) => 21 + i));
        expect(h.events.map((e) => e.payload[0])).toEqual(Array.from({ length: 200 }, (_, i) => (21 + i) % 256));
        let consumers = -1;
        for (let i = 0; i < 50 && consumers !== 0; i++) {
          consumers = (await jsm.streams.info(stream)).state.consumer_count;
          if (consumers !== 0) await new Promise((r) => setTimeout(r, 20));
        }
        expect(consumers).toBe(0);
      } finally {
        await n.close();
      }
    });

    it("stores a burst of one channel as a few messages; each publish keeps its own offset, in call order", async () => {
      const [a, b] = [await node(), await node()];
      try {
        const ch = uniqueName("burst/");
        const got: { offset: number; payload: number[] }[] = [];
        const gaps: unknown[] = [];
        await b.broker.subscribe(ch, (e) => got.push({ offset: e.offset, payload: Array.from(e.payload) }), (g) => gaps.push(g));
        const other = { historySize: 500, historyTtlMs: 60_000 };
        // One turn: 60 small events, then 60 under other history options, then 40 of 20 KiB.
        const big = (i: number): Uint8Array => new Uint8Array(20_000).fill(i);
        const sent = [
          ...Array.from({ length: 60 }, (_, i) => ({ payload: Uint8Array.of(i, 1, 2), o: keep })),
          ...Array.from({ length: 60 }, (_, i) => ({ payload: Uint8Array.of(60 + i), o: other })),
          ...Array.from({ length: 40 }, (_, i) => ({ payload: big(120 + i), o: other })),
        ];
        const positions = await Promise.all(sent.map((m) => a.broker.publish(ch, m.payload, m.o)));
        expect(positions.map((p) => p.offset)).toEqual(sent.map((_, i) => i + 1));
        expect(new Set(positions.map((p) => p.epoch)).size).toBe(1);

        await until(() => got.length === sent.length, "every event on the other node");
        expect(got.map((e) => e.offset)).toEqual(sent.map((_, i) => i + 1));
        expect(got.map((e) => e.payload)).toEqual(sent.map((m) => Array.from(m.payload)));
        expect(gaps).toEqual([]);

        const h = await b.broker.history(ch, { epoch: positions[0]!.epoch, offset: 0 }, 500);
        expect(h.events.map((e) => Array.from(e.payload))).toEqual(sent.map((m) => Array.from(m.payload)));
        expect(h.gap).toBeUndefined();

        // Fewer stored messages than events; options and size split the batches.
        const subject = channelSubjects(prefix, ch).history;
        const stored = (await jsm.streams.info(stream, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
        expect(stored).toBeGreaterThanOrEqual(1 + 1 + 3); // the epoch marker, 60 small ones, at least 3 of 20 KiB
        expect(stored).toBeLessThan(sent.length / 2);
      } finally {
        await a.close();
        await b.close();
      }
    });

    describe("batch bounds", () => {
      /** The channel's messages in the stream, oldest first, without the epoch's marker. */
      const storedMessages = async (channel: string): Promise<StoredEvent[]> => {
        const reads = createStreamReads(jsm, jetstream(admin), stream);
        const subject = channelSubjects(prefix, channel).history;
        const out: StoredEvent[] = [];
        for (let m = await reads.next(subject, 1); m !== null; m = await reads.next(subject, m.seq + 1)) if (m.offset > 0) out.push(m);
        return out;
      };

      /**
       * Publishes `payloads` on a fresh channel from a node with `limits`, all in one turn, and
       * checks that another node receives every one, in order, at consecutive offsets, as history
       * also returns them. The channel's stored messages are returned.
       */
      const burst = async (limits: NatsBrokerOptions, payloads: readonly Uint8Array[]): Promise<StoredEvent[]> => {
        const [a, b] = [await node(limits), await node()];
        try {
          const ch = uniqueName("bounds/");
          const got: { offset: number; payload: Uint8Array }[] = [];
          const gaps: unknown[] = [];
          await b.broker.subscribe(ch, (e) => got.push({ offset: e.offset, payload: e.payload }), (g) => gaps.push(g));
          const positions = await Promise.all(payloads.map((p) => a.broker.publish(ch, p, keep)));
          expect(positions.map((p) => p.offset)).toEqual(payloads.map((_, i) => i + 1));
          await until(() => got.length === payloads.length, "every event on the other node");
          expect(got.map((e) => e.offset)).toEqual(payloads.map((_, i) => i + 1));
          expect(got.every((e, i) => Buffer.from(e.payload).equals(payloads[i]!))).toBe(true);
          expect(gaps).toEqual([]);
          const h = await b.broker.history(ch, { epoch: positions[0]!.epoch, offset: 0 }, 1_000);
          expect(h.events.map((e) => e.offset)).toEqual(payloads.map((_, i) => i + 1));
          expect(h.events.every((e, i) => Buffer.from(e.payload).equals(payloads[i]!))).toBe(true);
          const stored = await storedMessages(ch);
          expect(stored.reduce((sum, m) => sum + m.count, 0)).toBe(payloads.length);
          return stored;
        } finally {
          await a.close();
          await b.close();
        }
      };
      const small = (n: number, size = 3): Uint8Array[] => Array.from({ length: n }, (_, i) => new Uint8Array(size).fill(i + 1));

      it("maxBatchEvents 1 stores a burst as one message per event", async () => {
        const stored = await burst({ maxBatchEvents: 1 }, small(20));
        expect(stored.map((m) => m.count)).toEqual(Array(20).fill(1));
        expect(stored.map((m) => m.offset)).toEqual(small(20).map((_, i) => i + 1));
        // Each message names the one before it: one event per link of the chain.
        expect(stored.slice(1).map((m) => m.prevSeq)).toEqual(stored.slice(0, -1).map((m) => m.seq));
      });

      it("maxBatchEvents 3: a burst of 10 is stored as messages of at most 3 events", async () => {
        const stored = await burst({ maxBatchEvents: 3 }, small(10));
        expect(stored.map((m) => m.count)).toEqual([3, 3, 3, 1]);
        expect(stored.map((m) => m.offset)).toEqual([3, 6, 9, 10]);
      });

      it("maxBatchBytes bounds a message's body; a larger event goes alone", async () => {
        // 300 bytes and 4 of framing each: three fit in 1,000 bytes, four do not.
        const payloads = [...small(6, 300), new Uint8Array(2_000).fill(99), ...small(3, 300)];
        const stored = await burst({ maxBatchBytes: 1_000 }, payloads);
        expect(stored.map((m) => m.count)).toEqual([3, 3, 1, 3]);
        expect(stored.map((m) => m.payload.length)).toEqual([912, 912, 2_000, 912]);
      });

      it("maxBatchBytes above half the server's max_payload is held to that half", async () => {
        const half = Math.floor(admin.info!.max_payload / 2);
        const size = 100 * 1_024;
        const fit = Math.floor(half / (4 + size));
        const payloads = small(fit + 2, size);
        const stored = await burst({ maxBatchBytes: 16 * 1_024 * 1_024 }, payloads);
        expect(stored.map((m) => m.count)).toEqual([fit, 2]);
        for (const m of stored) expect(m.payload.length).toBeLessThanOrEqual(half);
      });
    });

    it("carries channel names that are not valid subjects", async () => {
      const [a, b] = [await node(), await node()];
      try {
        const ch = `${uniqueName("odd")} .*>%é/`;
        const got: string[] = [];
        await a.broker.subscribe(ch, (e) => got.push(e.channel));
        await b.broker.publish(ch, new Uint8Array(1), keep);
        await until(() => got.length === 1, "the event");
        expect(got).toEqual([ch]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("re-creates a deleted stream and starts new epochs", async () => {
      const own = uniqueName("PCTEST_GONE_").toUpperCase();
      const broker = await createNatsBroker(options({ stream: own, subjectPrefix: uniqueName("pcgone") }));
      try {
        const before = await broker.publish("c", new Uint8Array(1), keep);
        await jsm.streams.delete(own);
        const after = await broker.publish("c", new Uint8Array(1), keep);
        expect(after.offset).toBe(1);
        expect(after.epoch).not.toBe(before.epoch);
      } finally {
        await broker.close();
        await jsm.streams.delete(own).catch(() => undefined);
      }
    });

    it("rejects invalid options naming the value", async () => {
      await expect(createNatsBroker(options({ maxHistorySize: 0 }))).rejects.toThrow(/maxHistorySize must be an integer >= 1, got 0/);
      await expect(createNatsBroker(options({ pageSize: 0 }))).rejects.toThrow(/pageSize/);
      const refusal = async (o: NatsBrokerOptions): Promise<ProtocastError> => {
        const e: unknown = await createNatsBroker(options(o)).then(
          async (b) => {
            await b.close();
            throw new Error(`expected ${JSON.stringify(o)} to be refused`);
          },
          (err: unknown) => err,
        );
        expect(e).toBeInstanceOf(ProtocastError);
        expect((e as ProtocastError).code).toBe(Code.InvalidArgument);
        expect((e as ProtocastError).reason).toBe("bad_option");
        return e as ProtocastError;
      };
      expect((await refusal({ maxBatchEvents: 0 })).message).toMatch(/createNatsBroker: option maxBatchEvents must be an integer >= 1, got 0/);
      expect((await refusal({ maxBatchEvents: 2.5 })).message).toMatch(/option maxBatchEvents must be an integer >= 1, got 2.5/);
      expect((await refusal({ maxBatchBytes: -1 })).message).toMatch(/option maxBatchBytes must be an integer >= 1, got -1/);
      expect((await refusal({ maxBatchBytes: Number.NaN })).message).toMatch(/option maxBatchBytes must be an integer >= 1, got NaN/);
      expect((await refusal({ maxPending: 0 })).message).toMatch(/maxPending must be an integer >= 1, got 0/);
    });
  });

  afterAll(async () => {
    await jsm.streams.delete(stream).catch(() => undefined);
  });
});
