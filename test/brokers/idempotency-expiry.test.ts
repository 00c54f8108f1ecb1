import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "protocast";
import { createNatsIdempotencyStore } from "../../runtime/adapters/nats/nats-idempotency.js";
import { createRedisIdempotencyStore } from "../../runtime/adapters/redis/redis-idempotency.js";
import { hostPort, natsUrl, probe, redisUrl, skipReason, sleep, uniqueName, until } from "./services.js";

// The shared stores leave expiry to the engine: a record must be gone from Redis or NATS once
// its ttl has passed, with no further call from anybody.

const fp = { target: "chat.v1.Chat/Send", digest: 42 };
const reply = { kind: "reply", payload: Uint8Array.of(1) } as const;
const transient = { kind: "error", code: Code.Unavailable, message: "shutting down", reason: "" } as const;

const eventually = until;

const redisDown = skipReason("Redis", await probe(redisUrl));

describe.skipIf(redisDown !== undefined)("Redis idempotency records expire in Redis", () => {
  const prefix = `${uniqueName("pcidemx:")}:`;
  const admin = new Redis(redisUrl, { lazyConnect: true });
  // Long enough that the keys are still there when the test lists them on a loaded machine.
  const ttlMs = 1_500;
  const store = createRedisIdempotencyStore({ url: redisUrl, keyPrefix: prefix, ttlMs, pollMs: 5 });
  // KEYS, not one SCAN call: a single SCAN page may miss keys of a large keyspace.
  const keys = async (): Promise<string[]> => await admin.keys(`${prefix}*`);

  afterAll(async () => {
    await store.close();
    const left = await keys();
    if (left.length > 0) await admin.del(...left);
    await admin.quit();
  });

  it("deletes completed, forgotten and abandoned running records, and the completion index, on its own", async () => {
    const p = uniqueName("u");
    expect(await store.begin(p, "done", fp, { leaseMs: 60_000 })).toEqual({ kind: "run" });
    await store.complete(p, "done", reply);
    expect(await store.begin(p, "forgotten", fp, { leaseMs: 60_000 })).toEqual({ kind: "run" });
    await store.forget(p, "forgotten", transient);
    // Its node "died": never completed. The lease (100 ms) plus ttlMs bounds its life.
    expect(await store.begin(p, "abandoned", fp, { leaseMs: 100 })).toEqual({ kind: "run" });

    const present = await keys();
    expect(present).toHaveLength(4); // three records and the principal's sorted set of completions
    for (const k of present) {
      const pttl = await admin.pttl(k);
      expect(pttl).toBeGreaterThan(0); // every key carries an expiry in Redis
      // At most the ttl, or the lease plus the ttl for the abandoned running record.
      expect(pttl).toBeLessThanOrEqual(100 + ttlMs);
    }
    // EXISTS answers as Redis sees the key: an expired key is gone whether or not the active
    // expiry cycle has reclaimed it yet.
    const gone = await eventually(async () => (await admin.exists(...present)) === 0, "every key to expire", 10_000);
    expect(gone).toBeLessThan(100 + ttlMs + 3_000);
  });
});

const natsDown = skipReason("NATS", await probe(natsUrl));
const server = `${hostPort(natsUrl).host}:${hostPort(natsUrl).port}`;

describe.skipIf(natsDown !== undefined)("NATS idempotency records expire in JetStream", () => {
  const bucket = uniqueName("pcidemx_");
  const ttlMs = 1_000;
  let admin: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    admin = await connect({ servers: server });
    jsm = await jetstreamManager(admin);
  });
  afterAll(async () => {
    await jsm.streams.delete(`KV_${bucket}`).catch(() => undefined);
    await admin?.close();
  });

  // The local nats-server (2.9) has no per-message TTL, so the store sets the bucket's
  // max_age to ttlMs and the server drops every record that age.
  it("drops completed and abandoned running records once ttlMs has passed", async () => {
    const store = await createNatsIdempotencyStore({ servers: server, bucket, ttlMs, pollMs: 5 });
    try {
      const p = uniqueName("u");
      // No record can be older than this when the bucket empties.
      const firstWrite = Date.now();
      expect(await store.begin(p, "done", fp, { leaseMs: 500 })).toEqual({ kind: "run" });
      await store.complete(p, "done", reply);
      expect(await store.begin(p, "abandoned", fp, { leaseMs: 500 })).toEqual({ kind: "run" });
      const stream = `KV_${bucket}`;
      expect((await jsm.streams.info(stream)).state.messages).toBe(2);
      await eventually(async () => (await jsm.streams.info(stream)).state.messages === 0, "the bucket to empty", ttlMs + 5_000);
      // Not before ttlMs (less the server's timer granularity), however slow the writes above were.
      expect(Date.now() - firstWrite).toBeGreaterThanOrEqual(ttlMs - 200);
      // And the store treats the key as new: nothing of the old record is left anywhere.
      expect(await store.begin(p, "done", fp, { leaseMs: 500 })).toEqual({ kind: "run" });
    } finally {
      await store.close();
    }
  });
});
