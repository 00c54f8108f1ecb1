// Factories check their options and say what is wrong, naming the option: a Promise where an
// object is expected (the missing await), an unknown option (with the likely one), a bad value.
import { describe, expect, it } from "vitest";
import { Code, ProtocastError, ServerCore, connect, createMemoryBroker, createMemoryIdempotencyStore, createServer, type Broker } from "protocast/node";
import { createNatsBroker, createNatsSessionStore } from "protocast/nats";
import { createMetrics } from "protocast/ops";
import { createRedisBroker, createRedisIdempotencyStore } from "protocast/redis";

function refusal(fn: () => unknown): ProtocastError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ProtocastError);
    const err = e as ProtocastError;
    expect(err.code).toBe(Code.InvalidArgument);
    return err;
  }
  throw new Error("expected the options to be refused");
}

describe("createServer options", () => {
  it("a Promise where a broker is expected: says to await the factory", () => {
    const pending = Promise.resolve(createMemoryBroker()) as unknown as Broker;
    const err = refusal(() => createServer({ broker: pending }));
    expect(err.message).toMatch(/option broker is a Promise; await/);
    expect(err.reason).toBe("bad_option");
  });

  it("an object that is not a broker, a session store or an idempotency store", () => {
    expect(refusal(() => createServer({ broker: {} as Broker })).message).toMatch(/option broker has no publish, subscribe, position, history, close methods/);
    expect(refusal(() => new ServerCore({ sessions: { write: () => undefined } as never })).message).toMatch(/option sessions has no claim, remove, close methods/);
    expect(refusal(() => createServer({ idempotency: 42 as never })).message).toMatch(/option idempotency must be an object, got number 42/);
  });

  it("an unknown option, with the one that was probably meant", () => {
    expect(refusal(() => createServer({ brokr: createMemoryBroker() } as never)).message).toMatch(/unknown option "brokr"; did you mean "broker"\?/);
    expect(refusal(() => createServer({ pingIntervalMS: 1000 } as never)).message).toMatch(/did you mean "pingIntervalMs"/);
    expect(refusal(() => createServer({ somethingElse: 1 } as never)).message).toMatch(/unknown option "somethingElse"$/);
    expect(refusal(() => createServer({ cluster: { heartbeat: 5 } } as never)).message).toMatch(/cluster: unknown option "heartbeat"; did you mean "heartbeatMs"/);
  });

  it("a negative or fractional limit names the limit", () => {
    expect(refusal(() => createServer({ graceMs: -1 })).message).toMatch(/graceMs must be a positive integer, got -1/);
    expect(refusal(() => createServer({ maxMembers: 2.5 })).message).toMatch(/maxMembers must be a positive integer, got 2.5/);
    expect(refusal(() => createServer({ cluster: { nodeTimeoutMs: 0 } })).message).toMatch(/cluster.nodeTimeoutMs must be a positive integer/);
  });

  it("bad values of the HTTP-side options", () => {
    expect(refusal(() => createServer({ path: "protocast" })).message).toMatch(/option path must start with "\/"/);
    expect(refusal(() => createServer({ transports: ["ws"] as never })).message).toMatch(/option transports\[\] must be one of "websocket", "http", got "ws"/);
    expect(refusal(() => createServer({ transports: [] })).message).toMatch(/non-empty list/);
    expect(refusal(() => createServer({ allowedOrigins: ["https://app.example.com/login"] })).message).toMatch(/must be an origin/);
    expect(refusal(() => createServer({ authenticate: "yes" as never })).message).toMatch(/option authenticate must be a function, got "yes"/);
    expect(refusal(() => createServer({ compression: { treshold: 10 } as never })).message).toMatch(/compression: unknown option "treshold"; did you mean "threshold"/);
    expect(refusal(() => createServer({ compression: { level: 12 } })).message).toMatch(/compression.level must be an integer from 1 to 9, got 12/);
  });

  it("good options pass", async () => {
    const server = createServer({ broker: createMemoryBroker(), graceMs: 1000, path: "/rt", transports: ["websocket"], allowedOrigins: ["https://app.example.com", "http://127.0.0.1:8080"], cluster: false });
    await server.close({ deadlineMs: 0 });
  });
});

describe("connect options", () => {
  it("an unknown option, a bad list, a bad number", () => {
    expect(refusal(() => connect("ws://127.0.0.1:1/protocast", { reconect: false } as never)).message).toMatch(/unknown option "reconect"; did you mean "reconnect"/);
    expect(refusal(() => connect("ws://127.0.0.1:1/protocast", { transports: ["sse"] as never })).message).toMatch(/transports\[\] must be one of "websocket", "http", got "sse"/);
    expect(refusal(() => connect("ws://127.0.0.1:1/protocast", { openTimeoutMs: 0 })).message).toMatch(/openTimeoutMs must be a positive integer of milliseconds, got 0/);
    expect(refusal(() => connect("ws://127.0.0.1:1/protocast", { reconnect: { base: 10 } as never })).message).toMatch(/reconnect: unknown option "base"; did you mean "baseMs"/);
    expect(refusal(() => connect("ws://127.0.0.1:1/protocast", { token: 12 as never })).message).toMatch(/option token must be a function, got number 12/);
  });
});

describe("the other factories refuse options they do not know", () => {
  it("memory broker and store, metrics, Redis: at once", () => {
    expect(refusal(() => createMemoryBroker({ nw: () => 0 } as never)).message).toMatch(/createMemoryBroker: unknown option "nw"; did you mean "now"/);
    expect(refusal(() => createMemoryIdempotencyStore({ ttl: 5 } as never)).message).toMatch(/createMemoryIdempotencyStore: unknown option "ttl"; did you mean "ttlMs"/);
    expect(refusal(() => createMetrics({ prefx: "x_" } as never)).message).toMatch(/createMetrics: unknown option "prefx"; did you mean "prefix"/);
    expect(refusal(() => createRedisBroker({ ulr: "redis://127.0.0.1:6379" } as never)).message).toMatch(/createRedisBroker: unknown option "ulr"; did you mean "url"/);
    expect(refusal(() => createRedisIdempotencyStore({ keyprefix: "p:" } as never)).message).toMatch(/did you mean "keyPrefix"/);
  });

  it("NATS: the returned promise rejects before connecting", async () => {
    await expect(createNatsBroker({ server: "127.0.0.1:4222" } as never)).rejects.toThrow(/createNatsBroker: unknown option "server"; did you mean "servers"/);
    await expect(createNatsSessionStore({ bucket: "b", ttl: 1 } as never)).rejects.toThrow(/unknown option "ttl"; did you mean "ttlMs"/);
  });
});
