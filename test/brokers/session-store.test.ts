import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createMemorySessionStore, type SessionStore, type SessionWrite } from "protocast";
import { createNatsSessionStore, type NatsSessionStoreOptions } from "../../runtime/adapters/nats/nats-session-store.js";
import { createRedisSessionStore, type RedisSessionStoreOptions } from "../../runtime/adapters/redis/redis-session-store.js";
import { startOutageProxy } from "./outage-proxy.js";
import { sessionStoreConformance } from "./session-store-conformance.js";
import { freePort, hostPort, natsUrl, probe, redisUrl, skipReason, sleep, uniqueName } from "./services.js";

const ttl = 60_000;
const create = { token: "tok", principal: "{}" };
const write = (id: string, w: Partial<SessionWrite> = {}): SessionWrite => ({ id, frames: [], outSeq: 0, inSeq: 0, ackSeq: 0, ...w });

/** Rejects with a ProtocastError of `code`, and within `ms`. */
async function rejectsWithin(ms: number, code: Code, work: () => Promise<unknown>): Promise<void> {
  const started = Date.now();
  await expect(work()).rejects.toMatchObject({ code });
  expect(Date.now() - started).toBeLessThan(ms);
}

/** What the shared stores do beyond the in-memory one. */
function sharedBehaviour(open: () => Promise<SessionStore>): void {
  it("keeps one frame per seq: a write re-sent after an unknown outcome adds nothing", async () => {
    const store = await open();
    try {
      const s = uniqueName("resent-");
      const frames = [[1, Uint8Array.of(1)], [2, Uint8Array.of(2)]] as const;
      expect(await store.write("a", [write(s, { create, frames: [frames[0]], outSeq: 1 })], ttl)).toEqual([true]);
      expect(await store.write("a", [write(s, { create, frames: [...frames], outSeq: 2 })], ttl)).toEqual([true]);
      expect(await store.write("a", [write(s, { frames: [...frames], outSeq: 2 })], ttl)).toEqual([true]);
      expect((await store.claim(s, "a", ttl))?.frames.map(([seq, b]) => [seq, Array.from(b)])).toEqual([[1, [1]], [2, [2]]]);
      // Other bytes under a seq already held replace them.
      expect(await store.write("a", [write(s, { frames: [[2, Uint8Array.of(9, 9)], [3, Uint8Array.of(3)]], outSeq: 3 })], ttl)).toEqual([true]);
      expect((await store.claim(s, "a", ttl))?.frames.map(([seq, b]) => [seq, Array.from(b)])).toEqual([[1, [1]], [2, [9, 9]], [3, [3]]]);
    } finally {
      await store.close();
    }
  });
}

// The in-memory store is one process's: every "node" is the same instance.
const memory = createMemorySessionStore();
sessionStoreConformance("memory", () => Promise.resolve(memory), { propertyRuns: 60 });

const redisDown = skipReason("Redis", await probe(redisUrl));

describe.skipIf(redisDown !== undefined)("Redis session store", () => {
  const prefix = `${uniqueName("pcsess:")}:`;
  const admin = new Redis(redisUrl, { lazyConnect: true });
  const options = (extra: RedisSessionStoreOptions = {}): RedisSessionStoreOptions => ({ url: redisUrl, keyPrefix: prefix, ...extra });

  sessionStoreConformance("redis", () => Promise.resolve(createRedisSessionStore(options())), { propertyRuns: 60 });
  sharedBehaviour(() => Promise.resolve(createRedisSessionStore(options())));

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

  it("keeps a session in two keys under its id's hash tag, both expiring", async () => {
    const store = createRedisSessionStore(options());
    try {
      const s = "we}ird{id:*";
      expect(await store.write("a", [write(s, { create, frames: [[1, Uint8Array.of(0, 1)]], outSeq: 1 })], 5_000)).toEqual([true]);
      const keys = [`${prefix}session:{${s}}`, `${prefix}session:{${s}}:f`];
      expect(await admin.hget(keys[0]!, "owner")).toBe("a");
      expect(await admin.zcard(keys[1]!)).toBe(1);
      for (const k of keys) {
        const left = await admin.pttl(k);
        expect(left).toBeGreaterThan(0);
        expect(left).toBeLessThanOrEqual(5_000);
      }
      // A cluster hashes the text between the first "{" and the next "}": the same for both.
      const tag = (k: string): string => k.slice(k.indexOf("{") + 1, k.indexOf("}", k.indexOf("{")));
      expect(tag(keys[0]!)).toBe(tag(keys[1]!));
    } finally {
      await store.close();
    }
  });

  it("loads its scripts again after the script cache was flushed", async () => {
    const store = createRedisSessionStore(options());
    try {
      const [s, t] = [uniqueName("flush-"), uniqueName("flush-")];
      expect(await store.write("a", [write(s, { create })], ttl)).toEqual([true]);
      await admin.script("FLUSH");
      expect(await store.write("a", [write(s, { outSeq: 1, frames: [[1, Uint8Array.of(1)]] }), write(t, { create }), write(t, { outSeq: 2 })], ttl)).toEqual([true, true, true]);
      await admin.script("FLUSH");
      expect(await store.claim(t, "b", ttl)).toMatchObject({ outSeq: 2 });
      await admin.script("FLUSH");
      await store.remove("b", [t]);
      expect(await store.claim(t, "b", ttl)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("leaves a client it was given open", async () => {
    const client = new Redis(redisUrl);
    const store = createRedisSessionStore({ redis: client, keyPrefix: prefix });
    const s = uniqueName("given-");
    expect(await store.write("a", [write(s, { create })], ttl)).toEqual([true]);
    await store.close();
    expect(await client.exists(`${prefix}session:{${s}}`)).toBe(1);
    await client.quit();
  });

  it("rejects a batch with UNAVAILABLE within outageWaitMs when Redis is unreachable", async () => {
    const nowhere = createRedisSessionStore({ url: `redis://127.0.0.1:${await freePort()}`, keyPrefix: prefix, outageWaitMs: 200 });
    try {
      await rejectsWithin(1_500, Code.Unavailable, () => nowhere.write("a", [write("x", { create })], ttl));
      await rejectsWithin(1_500, Code.Unavailable, () => nowhere.claim("x", "a", ttl));
    } finally {
      await nowhere.close();
    }
    const proxy = await startOutageProxy(hostPort(redisUrl).port, hostPort(redisUrl).host);
    const store = createRedisSessionStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix, outageWaitMs: 300 });
    try {
      const s = uniqueName("outage-");
      expect(await store.write("a", [write(s, { create })], ttl)).toEqual([true]);
      proxy.down();
      await rejectsWithin(1_500, Code.Unavailable, () => store.write("a", [write(s, { outSeq: 1 })], ttl));
      proxy.up();
      // A command cut off mid-flight may have run: the write rejects rather than being repeated.
      proxy.swallowReplies();
      await rejectsWithin(1_500, Code.Unavailable, () => store.write("a", [write(s, { outSeq: 2 })], ttl));
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it("rejects invalid arguments naming them", async () => {
    expect(() => createRedisSessionStore(options({ outageWaitMs: -1 }))).toThrow(/outageWaitMs must be an integer >= 0, got -1/);
    const store = createRedisSessionStore(options());
    try {
      await expect(store.write("a", [write("x", { create })], 0)).rejects.toThrow(/ttlMs must be positive/);
      await expect(store.write("a", [write("x", { create, outSeq: -1 })], ttl)).rejects.toThrow(/outSeq must be a non-negative integer/);
    } finally {
      await store.close();
    }
  });
});

const natsDown = skipReason("NATS", await probe(natsUrl));

describe.skipIf(natsDown !== undefined)("NATS session store", () => {
  const buckets: string[] = [];
  let nc: NatsConnection;
  const bucket = (): string => {
    const b = uniqueName("pcsess_");
    buckets.push(b);
    return b;
  };
  const shared = bucket();
  const options = (extra: NatsSessionStoreOptions = {}): NatsSessionStoreOptions => ({ connection: nc, bucket: shared, ...extra });

  beforeAll(async () => {
    nc = await connect({ servers: natsUrl });
  });
  afterAll(async () => {
    const jsm = await jetstreamManager(nc);
    for (const b of buckets) await jsm.streams.delete(`KV_${b}`).catch(() => undefined);
    await nc.close();
  });

  sessionStoreConformance("nats", () => createNatsSessionStore(options()), { propertyRuns: 60 });
  sharedBehaviour(() => createNatsSessionStore(options()));

  it("sizes the bucket's max_age to ttlMs and forgets sessions by it, whatever ttlMs a write passes", async () => {
    const b = bucket();
    const store = await createNatsSessionStore({ servers: natsUrl, bucket: b, ttlMs: 1_000 });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(`KV_${b}`);
      expect(info.config.max_age).toBe(nanos(1_000));
      expect(info.config.max_msgs_per_subject).toBe(1);
      const s = uniqueName("aged-");
      expect(await store.write("a", [write(s, { create })], ttl)).toEqual([true]);
      await sleep(1_600); // past max_age (1 s): NATS expires the entry itself, in real time
      expect(await store.claim(s, "a", ttl)).toBeUndefined();
    } finally {
      await store.close();
    }
    // Another node with another ttlMs brings the bucket to its own.
    const other = await createNatsSessionStore({ connection: nc, bucket: b, ttlMs: 5_000 });
    expect((await (await jetstreamManager(nc)).streams.info(`KV_${b}`)).config.max_age).toBe(nanos(5_000));
    await other.close();
  });

  it("creates the bucket again when it disappeared", async () => {
    const b = bucket();
    const store = await createNatsSessionStore({ connection: nc, bucket: b });
    try {
      const s = uniqueName("gone-");
      expect(await store.write("a", [write(s, { create })], ttl)).toEqual([true]);
      await (await jetstreamManager(nc)).streams.delete(`KV_${b}`);
      // The revision the store remembered went with the bucket: the write is refused, not lost silently.
      expect(await store.write("a", [write(s, { outSeq: 1 })], ttl)).toEqual([false]);
      expect(await store.write("a", [write(s, { create, outSeq: 1 })], ttl)).toEqual([true]);
      expect(await store.claim(s, "b", ttl)).toMatchObject({ outSeq: 1 });
    } finally {
      await store.close();
    }
  });

  it("refuses a session larger than the server's max_payload with RESOURCE_EXHAUSTED", async () => {
    const store = await createNatsSessionStore(options());
    try {
      const big = new Uint8Array((nc.info?.max_payload ?? 1_048_576) + 1);
      await expect(store.write("a", [write(uniqueName("big-"), { create, frames: [[1, big]], outSeq: 1 })], ttl)).rejects.toMatchObject({ code: Code.ResourceExhausted });
    } finally {
      await store.close();
    }
  });

  it("leaves a connection it was given open, and closes one it opened", async () => {
    const store = await createNatsSessionStore(options());
    await store.close();
    expect(nc.isClosed()).toBe(false);
    const own = await createNatsSessionStore({ servers: natsUrl, bucket: shared });
    await own.close();
  });

  it("rejects a batch with UNAVAILABLE within outageWaitMs when NATS is unreachable", async () => {
    const proxy = await startOutageProxy(hostPort(natsUrl).port, hostPort(natsUrl).host);
    const store = await createNatsSessionStore({ servers: `nats://127.0.0.1:${proxy.port}`, bucket: shared, outageWaitMs: 300 });
    try {
      const [s, t] = [uniqueName("outage-"), uniqueName("outage-")];
      expect(await store.write("a", [write(s, { create })], ttl)).toEqual([true]);
      proxy.down();
      // s is known to the store (a publish straight away), t is not (a read first).
      await rejectsWithin(2_000, Code.Unavailable, () => store.write("a", [write(s, { outSeq: 1 })], ttl));
      await rejectsWithin(2_000, Code.Unavailable, () => store.write("a", [write(t, { create })], ttl));
      await rejectsWithin(2_000, Code.Unavailable, () => store.claim(s, "b", ttl));
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it("rejects invalid options naming them", async () => {
    await expect(createNatsSessionStore(options({ ttlMs: 10 }))).rejects.toThrow(/ttlMs must be an integer >= 1000, got 10/);
    await expect(createNatsSessionStore(options({ bucket: "a.b" }))).rejects.toThrow(/bucket must be/);
  });
});
