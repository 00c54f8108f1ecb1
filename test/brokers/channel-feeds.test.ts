import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createMemoryBroker, type Broker, type BrokerEvent, type HistoryResult } from "protocast";
import { createChannelFeeds, type BrokerGap, type ChannelFeeds, type ChannelFeedsOptions, type FeedUpstream } from "../../runtime/adapters/shared/channel-feeds.js";
import { sleep, until } from "./services.js";

// The node-side feed logic on its own: the "engine" is a memory broker whose history is the
// truth, and the test decides which of its events reach the feed (and in what order).

const keep = { historySize: 100, historyTtlMs: 0 };

interface Rig {
  readonly engine: Broker;
  readonly feeds: ChannelFeeds;
  readonly events: BrokerEvent[];
  readonly gaps: BrokerGap[];
  readonly errors: unknown[];
  readonly calls: { history: number; open: number; close: number };
  /** Publishes on the engine; the event reaches the feed only if `deliver` says so. */
  publish(channel: string, deliver?: boolean): Promise<BrokerEvent>;
  /** Replaces the engine by an empty one: its history is lost, its epoch new. */
  restart(): void;
}

async function rig(options: Partial<ChannelFeedsOptions> = {}, wrap?: (u: FeedUpstream) => FeedUpstream): Promise<Rig> {
  let engine = createMemoryBroker();
  const calls = { history: 0, open: 0, close: 0 };
  const errors: unknown[] = [];
  const base: FeedUpstream = {
    open: () => {
      calls.open++;
      return Promise.resolve();
    },
    close: () => void calls.close++,
    position: (c) => engine.position(c),
    history: (c, since, limit) => {
      calls.history++;
      return engine.history(c, since, limit);
    },
  };
  const feeds = createChannelFeeds(wrap?.(base) ?? base, { pageSize: 4, maxPending: 100, retryDelayMs: 5, onError: (e) => errors.push(e), ...options });
  const r: Rig = {
    get engine() {
      return engine;
    },
    feeds,
    events: [],
    gaps: [],
    errors,
    calls,
    async publish(channel, deliver = true) {
      const payload = new TextEncoder().encode(`p${Math.random()}`);
      const at = await engine.publish(channel, payload, keep);
      const event = { channel, ...at, payload };
      if (deliver) feeds.push(event);
      return event;
    },
    restart() {
      engine = createMemoryBroker();
    },
  };
  return r;
}

async function subscribed(r: Rig, channel: string): Promise<() => void> {
  return r.feeds.subscribe(
    channel,
    (e) => r.events.push(e),
    (g) => r.gaps.push(g),
  );
}

const offsets = (r: Rig): number[] => r.events.map((e) => e.offset);

describe("channel feeds", () => {
  it("delivers in order and drops duplicates and events at or below the baseline", async () => {
    const r = await rig();
    const before = await r.publish("c", false);
    await subscribed(r, "c");
    r.feeds.push(before); // published before the subscription: below the baseline
    const e2 = await r.publish("c");
    r.feeds.push(e2);
    await r.publish("c");
    // A later event: the feed delivers in order, so a duplicate would have come before it.
    await r.publish("c");
    await until(() => offsets(r).includes(4), "event 4");
    expect(offsets(r)).toEqual([2, 3, 4]);
    expect(r.calls.history).toBe(0);
  });

  it("reads events lost in transit from history and delivers them before what came early", async () => {
    const r = await rig();
    await subscribed(r, "c");
    await r.publish("c");
    for (let i = 0; i < 6; i++) await r.publish("c", false); // more than one page of 4
    await r.publish("c");
    await until(() => r.events.length === 8, "8 events");
    expect(offsets(r)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(r.gaps).toEqual([]);
    expect(r.calls.history).toBe(2);
  });

  it("reports what history no longer has, but not the events it holds itself", async () => {
    const r = await rig();
    await subscribed(r, "c");
    const e1 = await r.publish("c");
    await r.engine.publish("c", new Uint8Array(0), { historySize: 0, historyTtlMs: 0 }); // 2: no history kept
    const e3 = await r.engine.publish("c", new Uint8Array(0), { historySize: 0, historyTtlMs: 0 });
    await r.engine.publish("c", new Uint8Array(0), { historySize: 0, historyTtlMs: 0 }); // 4, not yet arrived
    r.feeds.push({ channel: "c", ...e3, payload: new Uint8Array(0) });
    await until(() => r.events.length === 2, "event 3");
    // History says 2..4 are gone, but 3 is held: only 2 is reported missing.
    expect(r.gaps).toEqual([{ channel: "c", epoch: e1.epoch, fromOffset: 2, toOffset: 2, reason: "history_disabled" }]);
    expect(offsets(r)).toEqual([1, 3]);
  });

  it("reports an epoch change and continues in the new epoch", async () => {
    const r = await rig();
    await subscribed(r, "c");
    await r.publish("c");
    r.restart();
    await r.publish("c", false); // new epoch, offset 1, lost
    const n2 = await r.publish("c");
    await until(() => r.events.length === 3, "3 events");
    expect(r.gaps).toEqual([{ channel: "c", epoch: n2.epoch, fromOffset: 0, toOffset: 0, reason: "epoch_changed" }]);
    expect(r.events.slice(1).map((e) => [e.epoch, e.offset])).toEqual([
      [n2.epoch, 1],
      [n2.epoch, 2],
    ]);
  });

  it("catches up on resync, as after a reconnect", async () => {
    const r = await rig();
    await subscribed(r, "c");
    for (let i = 0; i < 10; i++) await r.publish("c", false);
    await sleep(10); // nothing reaches the feed, so no later event can show that nothing came
    expect(r.events).toEqual([]); // nothing tells the feed, until the reconnect does
    r.feeds.resyncAll();
    await until(() => r.events.length === 10, "10 events");
    expect(offsets(r)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("retries a failing history read with backoff", async () => {
    let failures = 3;
    const r = await rig({}, (u) => ({
      ...u,
      history: (c, since, limit) => (failures-- > 0 ? Promise.reject(new Error("down")) : u.history(c, since, limit)),
    }));
    await subscribed(r, "c");
    await r.publish("c", false);
    await r.publish("c");
    await until(() => r.events.length === 2, "2 events", 2_000);
    expect(r.errors).toHaveLength(3);
  });

  it("gives up offsets that a lagging history never shows, after a few tries", async () => {
    const r = await rig({}, (u) => ({
      ...u,
      // A history that knows nothing after offset 1.
      history: async (c, since, limit): Promise<HistoryResult> => {
        const h = await u.history(c, since, limit);
        return { position: { epoch: h.position.epoch, offset: 1 }, events: [], gap: undefined };
      },
    }));
    await subscribed(r, "c");
    const e1 = await r.publish("c");
    await r.publish("c", false);
    await r.publish("c");
    await until(() => r.events.length === 2, "event 3", 2_000);
    expect(r.gaps).toEqual([{ channel: "c", epoch: e1.epoch, fromOffset: 2, toOffset: 2, reason: "history_expired" }]);
  });

  it("waits gapGraceMs for an out-of-order event before asking history", async () => {
    const r = await rig({ gapGraceMs: 50 });
    await subscribed(r, "c");
    const e1 = await r.publish("c", false);
    await r.publish("c");
    await sleep(10); // within gapGraceMs (50 ms), in real time: the grace is what the test is about
    r.feeds.push(e1);
    await until(() => r.events.length === 2, "2 events");
    expect(offsets(r)).toEqual([1, 2]);
    expect(r.calls.history).toBe(0);
  });

  it("keeps one upstream subscription per channel and ends it with the last listener", async () => {
    const r = await rig();
    const a = await subscribed(r, "c");
    const b = await subscribed(r, "c");
    expect(r.calls.open).toBe(1);
    await r.publish("c");
    expect(r.events).toHaveLength(2);
    a();
    expect(r.calls.close).toBe(0);
    b();
    expect(r.calls.close).toBe(1);
    expect(r.feeds.channels()).toEqual([]);
    await r.publish("c");
    expect(r.events).toHaveLength(2);
  });

  it("keeps delivering to other listeners when one throws", async () => {
    const r = await rig();
    await r.feeds.subscribe("c", () => {
      throw new Error("listener bug");
    });
    await subscribed(r, "c");
    await r.publish("c");
    await r.publish("c");
    expect(offsets(r)).toEqual([1, 2]);
    expect(r.errors).toHaveLength(2);
  });

  it("past maxPending, reads the overflow from history instead of holding it", async () => {
    const r = await rig({ maxPending: 3 });
    await subscribed(r, "c");
    await r.publish("c", false);
    for (let i = 0; i < 20; i++) await r.publish("c");
    await until(() => r.events.length === 21, "21 events");
    expect(offsets(r)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
  });

  it("property: any loss, duplication and reordering of fan-out still yields each event once, in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ copies: fc.integer({ min: 0, max: 2 }), delay: fc.integer({ min: 0, max: 3 }) }), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        async (plan, resync) => {
          const r = await rig({ gapGraceMs: 2 });
          await subscribed(r, "c");
          // Publish everything, then deliver each event 0..2 times after 0..3 ticks of delay.
          const sent: BrokerEvent[] = [];
          for (let i = 0; i < plan.length; i++) sent.push(await r.publish("c", false));
          const deliveries: Promise<void>[] = [];
          plan.forEach((p, i) => {
            for (let k = 0; k < p.copies; k++) deliveries.push(sleep(p.delay).then(() => r.feeds.push(sent[i]!)));
          });
          await Promise.all(deliveries);
          // A tail that never arrived is only learnt of on resync (as after a reconnect).
          if (resync || plan.at(-1)!.copies === 0) r.feeds.resyncAll();
          await until(() => r.events.length === plan.length, `${plan.length} events`, 3_000);
          expect(offsets(r)).toEqual(sent.map((e) => e.offset));
          expect(r.gaps).toEqual([]);
          r.feeds.close();
        },
      ),
      { numRuns: 60 },
    );
  });
});
