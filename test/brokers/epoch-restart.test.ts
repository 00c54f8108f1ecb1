import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Broker, BrokerEvent, BrokerPosition } from "protocast";
import { createNatsBroker } from "../../runtime/adapters/nats/nats-broker.js";
import { createRedisBroker } from "../../runtime/adapters/redis/redis-broker.js";
import type { BrokerGap } from "../../runtime/adapters/shared/channel-feeds.js";
import { startOutageProxy } from "./outage-proxy.js";
import { freePort, hasProgram, skipReason, startOwnServer, until, type OwnServer } from "./services.js";

// A broker of the test's own loses everything in a restart (Redis without persistence; NATS
// with its store directory wiped). Two subscribers: one stayed connected and had every event
// of the old epoch; the other was cut off (behind a proxy) before the last old events and
// comes back after the restart. The first must hear that nothing of the old epoch is known
// lost ("epoch_reset"), the second exactly which offsets of it it will never get.

interface Engine {
  readonly name: string;
  readonly missing: string | undefined;
  /** Starts the engine; `wipe` restarts it with nothing kept. */
  start(): Promise<{ port: number; restart(): Promise<void>; stop(): Promise<void> }>;
  broker(port: number): Promise<Broker>;
}

const engines: Engine[] = [
  {
    name: "redis",
    missing: skipReason("redis-server", hasProgram("redis-server") ? undefined : "redis-server is not installed"),
    async start() {
      const port = await freePort();
      const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
      let server: OwnServer = await startOwnServer("redis-server", args, port);
      return {
        port,
        async restart() {
          await server.kill();
          server = await startOwnServer("redis-server", args, port);
        },
        stop: () => server.kill(),
      };
    },
    broker: (port) => Promise.resolve(createRedisBroker({ url: `redis://127.0.0.1:${port}`, outageWaitMs: 3_000, onError: () => undefined })),
  },
  {
    name: "nats",
    missing: skipReason("nats-server", hasProgram("nats-server") ? undefined : "nats-server is not installed"),
    async start() {
      const port = await freePort();
      const dir = await mkdtemp(join(tmpdir(), "protocast-nats-"));
      const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir];
      let server: OwnServer = await startOwnServer("nats-server", args, port);
      return {
        port,
        async restart() {
          await server.kill();
          await rm(dir, { recursive: true, force: true });
          server = await startOwnServer("nats-server", args, port);
        },
        async stop() {
          await server.kill();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
    broker: (port) => createNatsBroker({ servers: `127.0.0.1:${port}`, outageWaitMs: 3_000, onError: () => undefined }),
  },
];

describe.each(engines)("$name restarted with nothing kept", (engine) => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closing.splice(0).reverse()) await c().catch(() => undefined);
  });

  it.skipIf(engine.missing !== undefined)("tells a subscriber that had everything it lost nothing, and one cut off what it lost", async () => {
    const server = await engine.start();
    closing.push(() => server.stop());
    const proxy = await startOutageProxy(server.port);
    closing.push(() => proxy.close());
    const pub = await engine.broker(server.port);
    const steady = await engine.broker(server.port);
    const cut = await engine.broker(proxy.port);
    closing.push(() => pub.close(), () => steady.close(), () => cut.close());
    const keep = { historySize: 1_000, historyTtlMs: 0 };
    const text = (e: BrokerEvent): string => new TextDecoder().decode(e.payload);
    const record = async (b: Broker): Promise<{ events: BrokerEvent[]; gaps: BrokerGap[] }> => {
      const r = { events: [] as BrokerEvent[], gaps: [] as BrokerGap[] };
      await b.subscribe("feed", (e) => r.events.push(e), (g) => r.gaps.push(g));
      return r;
    };
    const a = await record(steady);
    const b = await record(cut);
    const publish = async (from: number, to: number): Promise<BrokerPosition[]> => {
      const out: BrokerPosition[] = [];
      for (let i = from; i <= to; i++) out.push(await pub.publish("feed", new TextEncoder().encode(`m${i}`), keep));
      return out;
    };
    await publish(1, 10);
    await until(() => a.events.length === 10 && b.events.length === 10, "10 events on both");
    proxy.down();
    const old = await publish(11, 15);
    await until(() => a.events.length === 15, "15 events on the steady subscriber");

    await server.restart();
    const fresh = await publish(16, 20);
    await until(() => a.events.length === 20, "the new epoch on the steady subscriber", 8_000);
    proxy.up();
    await until(() => b.events.length === 15, "the new epoch on the one cut off", 8_000);
    // A marker after everything: a duplicate or a late gap report would have come before it.
    await publish(21, 21);
    await until(() => [a, b].every((r) => r.events.length > 0 && text(r.events.at(-1)!) === "m21"), "the marker on both subscribers", 8_000);
    for (const r of [a, b]) expect(text(r.events.pop()!)).toBe("m21");

    const [before, after] = [old[0]!.epoch, fresh[0]!.epoch];
    expect(after).not.toBe(before);
    expect(fresh.map((p) => p.offset)).toEqual([1, 2, 3, 4, 5]);
    const reset = { channel: "feed", epoch: after, fromOffset: 0, toOffset: 0, reason: "epoch_reset" };
    expect(a.gaps).toEqual([reset]);
    expect(b.gaps).toEqual([{ channel: "feed", epoch: before, fromOffset: 11, toOffset: 15, reason: "epoch_changed" }, reset]);
    expect(a.events.map(text)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i + 1}`));
    expect(b.events.map(text)).toEqual([...Array.from({ length: 10 }, (_, i) => `m${i + 1}`), ...Array.from({ length: 5 }, (_, i) => `m${i + 16}`)]);
    console.log(`${engine.name}: steady subscriber's gap ${JSON.stringify(a.gaps)}; cut-off subscriber's ${JSON.stringify(b.gaps)}`);
  }, 20_000);
});
