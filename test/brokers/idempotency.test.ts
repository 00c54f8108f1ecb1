import { connect, nanos, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryIdempotencyStore, type IdempotencyStore } from "protocast";
import { createNatsIdempotencyStore, type NatsIdempotencyOptions } from "../../runtime/adapters/nats/nats-idempotency.js";
import { createRedisIdempotencyStore, type RedisIdempotencyOptions } from "../../runtime/adapters/redis/redis-idempotency.js";
import { idempotencyConformance, type IdempotencyEngine } from "./idempotency-conformance.js";
import { hostPort, natsUrl, probe, redisUrl, skipReason, uniqueName } from "./services.js";

const fp = { target: "chat.v1.Chat/Send", digest: 42 };
const long = { leaseMs: 60_000 };

/** An engine whose stores open() makes, closed together. */
function engineOf(open: () => Promise<IdempotencyStore>, cleanup: () => Promise<void> = () => Promise.resolve()): IdempotencyEngine {
  const opened: IdempotencyStore[] = [];
  return {
    async open() {
      const store = await open();
      opened.push(store);
      return store;
    },
    async close() {
      await Promise.all(opened.map((s) => s.close()));
      await cleanup();
    },
  };
}

// The embedded store is one node: both "nodes" of a test are the same instance.
idempotencyConformance(
  "memory",
  ({ ttlMs, maxKeysPerPrincipal }) => {
    const store = createMemoryIdempotencyStore({ ttlMs, maxKeysPerPrincipal });
    return Promise.resolve(engineOf(() => Promise.resolve(store)));
  },
  { shared: false, boundsKeys: true, propertyRuns: 40 },
);

const redisDown = skipReason("Redis", await probe(redisUrl));

describe.skipIf(redisDown !== undefined)("Redis idempotency store", () => {
  const run = uniqueName("pcidem:");
  const admin = new Redis(redisUrl, { lazyConnect: true });
  let engines = 0;
  const options = (extra: RedisIdempotencyOptions = {}): RedisIdempotencyOptions => ({ url: redisUrl, keyPrefix: `${run}:${engines++}:`, pollMs: 5, ...extra });
  const keysUnder = async (prefix: string): Promise<string[]> => {
    const out: string[] = [];
    let cursor = "0";
    for (let i = 0; i < 1_000; i++) {
      const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 500);
      out.push(...keys);
      cursor = next;
      if (cursor === "0") break;
    }
    return out;
  };

  idempotencyConformance("redis", (limits) => {
    const o = options(limits);
    return Promise.resolve(engineOf(() => Promise.resolve(createRedisIdempotencyStore(o))));
  }, { shared: true, boundsKeys: true, propertyRuns: 15 });

  afterAll(async () => {
    // Bounded: the file writes a few hundred keys under its own prefix.
    const keys = await keysUnder(run);
    for (let i = 0; i < keys.length; i += 500) await admin.del(...keys.slice(i, i + 500));
    await admin.quit();
  });

  it("keeps one principal's records under one hash tag, with expiries", async () => {
    const o = options({ ttlMs: 60_000 });
    const store = createRedisIdempotencyStore(o);
    try {
      const principal = "we}ird{princ:pal*";
      for (const key of ["a", "{b}", ""]) {
        expect(await store.begin(principal, key, fp, long)).toEqual({ kind: "run" });
        await store.complete(principal, key, { kind: "reply", payload: Uint8Array.of(1) });
      }
      expect(await store.begin(principal, "running", fp, { leaseMs: 5_000 })).toEqual({ kind: "run" });
      const keys = await keysUnder(o.keyPrefix!);
      expect(keys).toHaveLength(5); // four records and the completions' sorted set
      const tags = new Set(keys.map((k) => /\{([^}]*)\}/.exec(k)?.[1]));
      expect(tags.size).toBe(1);
      expect([...tags][0]).toMatch(/^p[\w-]+$/);
      for (const k of keys) {
        const ttl = await admin.pttl(k);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(65_000); // completed: ttlMs; running: lease + ttlMs
      }
    } finally {
      await store.close();
    }
  });

  it("leaves a client it was given open", async () => {
    const client = new Redis(redisUrl);
    try {
      const store = createRedisIdempotencyStore(options({ redis: client }));
      expect(await store.begin(uniqueName("u"), "k", fp, long)).toEqual({ kind: "run" });
      await store.close();
      expect(await client.ping()).toBe("PONG");
      await expect(store.begin("u", "k", fp, long)).rejects.toThrow(/closed/);
    } finally {
      client.disconnect();
    }
  });

  it("loads its scripts again after the script cache was flushed", async () => {
    const store = createRedisIdempotencyStore(options());
    try {
      const p = uniqueName("u");
      expect(await store.begin(p, "k", fp, long)).toEqual({ kind: "run" });
      await admin.script("FLUSH");
      await store.complete(p, "k", { kind: "reply", payload: Uint8Array.of(7) });
      expect(await store.begin(p, "k", fp, long)).toEqual({ kind: "done", outcome: { kind: "reply", payload: Uint8Array.of(7) } });
    } finally {
      await store.close();
    }
  });

  it("rejects invalid options naming the value", () => {
    expect(() => createRedisIdempotencyStore(options({ ttlMs: 0 }))).toThrow(/ttlMs must be an integer >= 1, got 0/);
    expect(() => createRedisIdempotencyStore(options({ maxKeysPerPrincipal: 1.5 }))).toThrow(/maxKeysPerPrincipal .* got 1.5/);
    expect(() => createRedisIdempotencyStore(options({ pollMs: -1 }))).toThrow(/pollMs/);
  });
});

const natsDown = skipReason("NATS", await probe(natsUrl));
const server = `${hostPort(natsUrl).host}:${hostPort(natsUrl).port}`;

describe.skipIf(natsDown !== undefined)("NATS idempotency store", () => {
  const run = uniqueName("pcidem_");
  const buckets = new Set<string>();
  let admin: NatsConnection;
  let jsm: JetStreamManager;
  const bucket = (): string => {
    const b = `${run}_${buckets.size}`;
    buckets.add(b);
    return b;
  };
  const options = (extra: NatsIdempotencyOptions = {}): NatsIdempotencyOptions => ({ servers: server, bucket: bucket(), pollMs: 5, ...extra });

  beforeAll(async () => {
    admin = await connect({ servers: server });
    jsm = await jetstreamManager(admin);
  });
  afterAll(async () => {
    for (const b of buckets) await jsm.streams.delete(`KV_${b}`).catch(() => undefined);
    await admin?.close();
  });

  idempotencyConformance(
    "nats",
    ({ ttlMs, pollMs }) => {
      const o = options({ ttlMs, pollMs });
      return Promise.resolve(engineOf(() => createNatsIdempotencyStore(o), () => jsm.streams.delete(`KV_${o.bucket!}`).then(() => undefined)));
    },
    { shared: true, boundsKeys: false, propertyRuns: 15 },
  );

  it("keeps records in a KV-shaped bucket: max_age ttlMs, one message per key, valid key tokens", async () => {
    const o = options({ ttlMs: 30_000 });
    const store = await createNatsIdempotencyStore(o);
    try {
      expect(await store.begin("we ird.prin*>", "key.with dots", fp, long)).toEqual({ kind: "run" });
      await store.complete("we ird.prin*>", "key.with dots", { kind: "reply", payload: Uint8Array.of(1) });
      const info = await jsm.streams.info(`KV_${o.bucket!}`);
      expect(info.config).toMatchObject({ max_age: nanos(30_000), max_msgs_per_subject: 1, allow_direct: true, subjects: [`$KV.${o.bucket!}.>`] });
      expect(info.state.messages).toBe(1);
      const subjects = Object.keys((await jsm.streams.info(`KV_${o.bucket!}`, { subjects_filter: ">" })).state.subjects ?? {});
      expect(subjects).toHaveLength(1);
      expect(subjects[0]).toMatch(new RegExp(`^\\$KV\\.${o.bucket!}\\.p[\\w-]+\\.k[\\w-]+$`));
    } finally {
      await store.close();
    }
  });

  it("brings an existing bucket's max_age to ttlMs", async () => {
    const o = options({ ttlMs: 30_000 });
    await (await createNatsIdempotencyStore(o)).close();
    await (await createNatsIdempotencyStore({ ...o, ttlMs: 45_000 })).close();
    expect((await jsm.streams.info(`KV_${o.bucket!}`)).config.max_age).toBe(nanos(45_000));
  });

  it("leaves a connection it was given open", async () => {
    const nc = await connect({ servers: server });
    try {
      const store = await createNatsIdempotencyStore(options({ connection: nc }));
      expect(await store.begin(uniqueName("u"), "k", fp, long)).toEqual({ kind: "run" });
      await store.close();
      expect(nc.isClosed()).toBe(false);
      await expect(store.begin("u", "k", fp, long)).rejects.toThrow(/closed/);
    } finally {
      await nc.close();
    }
  });

  it("rejects invalid options naming the value", async () => {
    await expect(createNatsIdempotencyStore(options({ bucket: "no.dots" }))).rejects.toThrow(/bucket must be/);
    await expect(createNatsIdempotencyStore(options({ ttlMs: -5 }))).rejects.toThrow(/ttlMs must be an integer >= 1, got -5/);
  });
});
