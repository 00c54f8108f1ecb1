import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Code, ProtocastError, type BrokerEvent, type BrokerPosition } from "protocast";
import { createNatsBroker } from "../../runtime/adapters/nats/nats-broker.js";
import type { BrokerGap } from "../../runtime/adapters/shared/channel-feeds.js";
import { startOutageProxy } from "./outage-proxy.js";
import { freePort, hasProgram, skipReason, sleep, startOwnServer, until } from "./services.js";

const missing = skipReason("nats-server", hasProgram("nats-server") ? undefined : "nats-server is not installed");

// A NATS of the test's own, killed with SIGKILL mid-stream and started again on the same
// port and store directory. JetStream keeps its file store, so the epoch stays. The
// subscriber reaches NATS through a proxy that stays down a while after the restart, so the
// events published meanwhile reach it only from history: every event once, in order.
describe.skipIf(missing !== undefined)("NATS broker across a kill -9 and restart", () => {
  it("fills the outage from the stream: no gap, no loss, no duplicate", async () => {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), "protocast-nats-"));
    const args = ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir];
    let server = await startOwnServer("nats-server", args, port);
    const servers = `127.0.0.1:${port}`;
    const proxy = await startOutageProxy(port);
    const pub = await createNatsBroker({ servers, outageWaitMs: 4_000 });
    const sub = await createNatsBroker({ servers: `127.0.0.1:${proxy.port}`, outageWaitMs: 4_000 });
    try {
      const events: BrokerEvent[] = [];
      const gaps: BrokerGap[] = [];
      await sub.subscribe("feed", (e) => events.push(e), (g) => gaps.push(g));
      const sent: { i: number; at?: BrokerPosition; error?: unknown }[] = [];
      const publishing = (async () => {
        for (let i = 0; i < 150; i++) {
          try {
            sent.push({ i, at: await pub.publish("feed", new TextEncoder().encode(`m${i}`), { historySize: 1_000, historyTtlMs: 0 }) });
          } catch (error) {
            sent.push({ i, error });
          }
          await sleep(3); // publishes spread over the outage, in real time
        }
      })();
      await until(() => events.length >= 40, "40 events before the kill");
      await server.kill();
      proxy.down();
      await sleep(300); // the engine stays down a while, in real time
      server = await startOwnServer("nats-server", args, port);
      const seen = events.length;
      const published = (): number => sent.filter((s) => s.at !== undefined).length;
      await until(() => published() >= seen + 30, "30 publishes after the restart");
      proxy.up();
      await publishing;

      for (const s of sent) if (s.error !== undefined) expect(s.error).toBeInstanceOf(ProtocastError);
      for (const s of sent) if (s.error !== undefined) expect((s.error as ProtocastError).code).toBe(Code.Unavailable);
      const ok = sent.filter((s) => s.at !== undefined);
      expect(new Set(ok.map((s) => s.at!.epoch)).size).toBe(1);
      const last = Math.max(...ok.map((s) => s.at!.offset));
      await until(() => events.length >= last, `${last} events`, 8_000);
      // A marker after everything: a duplicate or a gap would have come before it.
      const marker = await pub.publish("feed", new TextEncoder().encode("marker"), { historySize: 1_000, historyTtlMs: 0 });
      await until(() => events.some((e) => e.offset === marker.offset), "the marker", 8_000);
      expect(events.pop()?.offset).toBe(marker.offset);
      expect(events.map((e) => e.offset)).toEqual(events.map((_, k) => k + 1));
      expect(gaps).toEqual([]);
      // Every acknowledged publish is there, at the offset it was given.
      const text = new Map(events.map((e) => [e.offset, new TextDecoder().decode(e.payload)]));
      for (const s of ok) expect(text.get(s.at!.offset)).toBe(`m${s.i}`);
      expect(new Set(text.values()).size).toBe(events.length);
    } finally {
      await pub.close();
      await sub.close();
      await proxy.close();
      await server.kill();
      await rm(dir, { recursive: true, force: true });
    }
  }, 25_000);
});
