import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelHistoryOptions } from "protocast";
import { createNatsBroker, type NatsBrokerOptions } from "../../runtime/adapters/nats/nats-broker.js";
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
  const node = async (): Promise<TestNode> => {
    const nc = await connect({ servers: server });
    const broker = await createNatsBroker(options({ connection: nc }));
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
    });
  });

  afterAll(async () => {
    await jsm.streams.delete(stream).catch(() => undefined);
  });
});
