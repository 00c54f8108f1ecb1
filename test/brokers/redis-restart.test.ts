import { describe, expect, it } from "vitest";
import { Code, ProtocastError, type BrokerEvent, type BrokerPosition } from "protocast";
import { createRedisBroker } from "../../runtime/adapters/redis/redis-broker.js";
import type { BrokerGap } from "../../runtime/adapters/shared/channel-feeds.js";
import { freePort, hasProgram, skipReason, sleep, startOwnServer, until } from "./services.js";

const missing = skipReason("redis-server", hasProgram("redis-server") ? undefined : "redis-server is not installed");

// A Redis of the test's own, killed with SIGKILL mid-stream and started again on the same
// port. With --save '' it comes back empty: the channel's history is gone, so subscribers
// must be told of a new epoch — and nothing published after the restart may be lost. See
// epoch-restart.test.ts for a subscriber that was cut off before the restart.
describe.skipIf(missing !== undefined)("Redis broker across a kill -9 and restart", () => {
  it("reports the lost history as an epoch reset and delivers everything after it", async () => {
    const port = await freePort();
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
    let server = await startOwnServer("redis-server", args, port);
    const url = `redis://127.0.0.1:${port}`;
    const pub = createRedisBroker({ url, outageWaitMs: 3_000 });
    const sub = createRedisBroker({ url, outageWaitMs: 3_000 });
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
      await sleep(300); // the engine stays down a while, in real time
      server = await startOwnServer("redis-server", args, port);
      await publishing;

      for (const s of sent) if (s.error !== undefined) expect((s.error as ProtocastError).code).toBe(Code.Unavailable);
      for (const s of sent) if (s.error !== undefined) expect(s.error).toBeInstanceOf(ProtocastError);
      const ok = sent.filter((s) => s.at !== undefined);
      const epochs = [...new Set(ok.map((s) => s.at!.epoch))];
      expect(epochs).toHaveLength(2);
      const [before, after] = epochs as [string, string];
      const afterSent = ok.filter((s) => s.at!.epoch === after);
      expect(afterSent.map((s) => s.at!.offset)).toEqual(afterSent.map((_, k) => k + 1));

      const text = (e: BrokerEvent): string => new TextDecoder().decode(e.payload);
      await until(() => events.filter((e) => e.epoch === after).length === afterSent.length, "every event of the new epoch", 5_000);
      // A marker after everything: a duplicate or a late event would have come before it.
      const marker = await pub.publish("feed", new TextEncoder().encode("marker"), { historySize: 1_000, historyTtlMs: 0 });
      await until(() => events.some((e) => e.epoch === marker.epoch && e.offset === marker.offset), "the marker", 5_000);
      expect(events.pop()?.offset).toBe(marker.offset);
      const old = events.filter((e) => e.epoch === before);
      const fresh = events.filter((e) => e.epoch === after);
      // The old epoch: a prefix, in order; the new one: all of it, in order, once.
      expect(old.map((e) => e.offset)).toEqual(old.map((_, k) => k + 1));
      expect(old.length).toBeGreaterThanOrEqual(40);
      expect(events).toEqual([...old, ...fresh]);
      expect(fresh.map(text)).toEqual(afterSent.map((s) => `m${s.i}`));
      // The new epoch remembers how far the old one went as far as the nodes knew: the
      // subscriber hears of the acknowledged events it never got, then that nothing else of
      // the old epoch is known lost.
      const lastAcked = Math.max(...ok.filter((s) => s.at!.epoch === before).map((s) => s.at!.offset));
      const reset = { channel: "feed", epoch: after, fromOffset: 0, toOffset: 0, reason: "epoch_reset" };
      const lost = { channel: "feed", epoch: before, fromOffset: old.length + 1, toOffset: lastAcked, reason: "epoch_changed" };
      expect(gaps).toEqual(old.length >= lastAcked ? [reset] : [lost, reset]);
      expect(new Set(events.map(text)).size).toBe(events.length);
    } finally {
      await pub.close();
      await sub.close();
      await server.kill();
    }
  }, 20_000);
});
