import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { Code, type ChannelHistoryOptions } from "protocast";
import { createRedisBroker, type RedisBrokerOptions } from "../../runtime/adapters/redis/redis-broker.js";
import { publishScript } from "../../runtime/adapters/redis/redis-scripts.js";
import { describeBrokerConformance, type OutageNode, type TestNode } from "./conformance.js";
import { startOutageProxy } from "./outage-proxy.js";
import { hostPort, probe, redisUrl, skipReason, sleep, uniqueName } from "./services.js";

const down = skipReason("Redis", await probe(redisUrl));

describe.skipIf(down !== undefined)("Redis broker", () => {
  const prefix = `${uniqueName("pctest:")}:`;
  const admin = new Redis(redisUrl, { lazyConnect: true });
  const key = (channel: string, kind: "m" | "h" | "e"): string => `${prefix}{${channel}}:${kind}`;
  const options = (extra: RedisBrokerOptions = {}): RedisBrokerOptions => ({ url: redisUrl, keyPrefix: prefix, ...extra });

  const node = (extra: RedisBrokerOptions = {}): TestNode => {
    const broker = createRedisBroker(options(extra));
    return { broker, close: () => broker.close() };
  };

  describeBrokerConformance({
    name: "redis",
    node: () => Promise.resolve(node()),
    async loseHistory(channel) {
      await admin.del(key(channel, "m"), key(channel, "h"));
    },
    async upstreamSubscribers(channel) {
      const reply = (await admin.pubsub("NUMSUB", key(channel, "e"))) as [string, number];
      return Number(reply[1]);
    },
    // The publish script run with a pub/sub channel nobody listens to: stored, never fanned out.
    async publishUnseen(channel: string, payload: Uint8Array, o: ChannelHistoryOptions) {
      const args = [key(channel, "m"), key(channel, "h"), randomBytes(6).toString("hex"), 0, "", 0, `${prefix}nowhere`, Buffer.from(payload), o.historySize, o.historyTtlMs, uniqueName("unseen"), "0", ""];
      const [epoch, offset] = (await admin.eval(publishScript, 2, ...args)) as [string, number];
      return { epoch, offset };
    },
    async outageNode(outageWaitMs): Promise<OutageNode> {
      const proxy = await startOutageProxy(hostPort(redisUrl).port, hostPort(redisUrl).host);
      const broker = createRedisBroker({ ...options({ outageWaitMs }), url: `redis://127.0.0.1:${proxy.port}` });
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
    propertyRuns: 12,
    cleanup: () => Promise.resolve(),
  });

  afterAll(async () => {
    // Bounded: the file writes a few hundred keys under its own prefix.
    let cursor = "0";
    for (let i = 0; i < 1_000; i++) {
      const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      if (keys.length > 0) await admin.del(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
    await admin.quit();
  });
  describe("Redis storage", () => {
    const bytes = new Uint8Array(100);

    it("keeps a channel's stream near historySize (MAXLEN ~) and reads exactly historySize", async () => {
      const broker = createRedisBroker(options());
      try {
        const ch = uniqueName("bounded/");
        for (let i = 0; i < 500; i++) await broker.publish(ch, bytes, { historySize: 10, historyTtlMs: 0 });
        // Approximate trimming frees whole stream nodes (100 entries by default).
        expect(await admin.xlen(key(ch, "h"))).toBeLessThanOrEqual(110);
        const h = await broker.history(ch, { epoch: (await broker.position(ch)).epoch, offset: 0 }, 1_000);
        expect(h.events.map((e) => e.offset)).toEqual(Array.from({ length: 10 }, (_, i) => 491 + i));
      } finally {
        await broker.close();
      }
    });

    it("drops expired entries while publishing and lets an idle stream expire", async () => {
      const broker = createRedisBroker(options());
      try {
        const ch = uniqueName("aged/");
        const ttlMs = 1_000;
        const started = Date.now();
        for (let i = 0; i < 50; i++) await broker.publish(ch, bytes, { historySize: 1_000, historyTtlMs: ttlMs });
        const length = await admin.xlen(key(ch, "h"));
        // All 50 are younger than the age bound, unless a loaded machine took that long to publish
        // them (then the oldest are already gone, which is what the bound is for).
        if (Date.now() - started < ttlMs) expect(length).toBe(50);
        else expect(length).toBeGreaterThan(0);
        const ttl = await admin.pttl(key(ch, "h"));
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(ttlMs);
        await sleep(ttlMs + 100);
        await broker.publish(ch, bytes, { historySize: 1_000, historyTtlMs: ttlMs });
        expect(await admin.xlen(key(ch, "h"))).toBe(1);
      } finally {
        await broker.close();
      }
    });

    it("starts a new epoch after metaTtlMs of idleness", async () => {
      // A second of idleness: short enough for a test, long enough that the key is still there
      // when a loaded machine reads its ttl.
      const broker = createRedisBroker(options({ metaTtlMs: 1_000 }));
      try {
        const ch = uniqueName("idle/");
        const first = await broker.publish(ch, bytes, { historySize: 10, historyTtlMs: 0 });
        expect(await admin.pttl(key(ch, "m"))).toBeGreaterThan(0);
        await sleep(1_150);
        const later = await broker.position(ch);
        expect(later.epoch).not.toBe(first.epoch);
        expect(later.offset).toBe(0);
      } finally {
        await broker.close();
      }
    });

    it("loads its scripts again after the script cache was flushed", async () => {
      const broker = createRedisBroker(options());
      try {
        const ch = uniqueName("flush/");
        await broker.publish(ch, bytes, { historySize: 10, historyTtlMs: 0 });
        await admin.script("FLUSH");
        expect(await broker.publish(ch, bytes, { historySize: 10, historyTtlMs: 0 })).toMatchObject({ offset: 2 });
      } finally {
        await broker.close();
      }
    });

    it("rejects invalid options naming the value", () => {
      expect(() => createRedisBroker(options({ outageWaitMs: -1 }))).toThrow(/outageWaitMs must be an integer >= 0, got -1/);
      expect(() => createRedisBroker(options({ metaTtlMs: 1.5 }))).toThrow(/metaTtlMs/);
      for (const bad of [{ metaTtlMs: -1 }, { outageWaitMs: -1 }, { maxPending: 0 }]) {
        expect(() => createRedisBroker(options(bad)), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: Code.InvalidArgument, reason: "bad_option" }));
      }
      expect(() => createRedisBroker(options({ metaTtlMs: -1 }))).toThrow(/createRedisBroker: option metaTtlMs must be a non-negative integer, got -1/);
    });
  });
});
