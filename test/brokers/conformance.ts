import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Code, ProtocastError, type Broker, type BrokerEvent, type BrokerPosition, type ChannelHistoryOptions } from "protocast";
import type { BrokerGap, GapListener } from "../../runtime/adapters/shared/channel-feeds.js";
import { sleep, uniqueName, until } from "./services.js";

/** A broker whose subscribe may also report gaps (the Redis and NATS adapters). */
export interface GapBroker extends Broker {
  subscribe(channel: string, listener: (event: BrokerEvent) => void, onGap?: GapListener): Promise<() => void>;
}

/** One server node's broker on an engine; nodes of one engine share its channels. */
export interface TestNode {
  readonly broker: GapBroker;
  /** Messages the node's connection received from the engine, where the engine can tell. */
  readonly received?: () => number;
  close(): Promise<void>;
}

/** A node whose connection to the engine passes through a proxy the test can take down. */
export interface OutageNode extends TestNode {
  down(): void;
  up(): void;
  /** Requests still reach the engine, its answers are dropped. */
  swallowReplies(): void;
}

export interface BrokerEngine {
  readonly name: string;
  node(): Promise<TestNode>;
  /** Makes the engine forget a channel's data, as a flushed or restarted engine does. */
  loseHistory(channel: string): Promise<void>;
  /** Engine-side count of subscribers of a channel (Redis: PUBSUB NUMSUB). */
  readonly upstreamSubscribers?: (channel: string) => Promise<number>;
  /** Stores an event in history without fanning it out: a message lost in transit. */
  readonly publishUnseen?: (channel: string, payload: Uint8Array, options: ChannelHistoryOptions) => Promise<BrokerPosition>;
  readonly outageNode?: (outageWaitMs: number) => Promise<OutageNode>;
  /** Whether subscribers hear of gaps (onGap) and recover on their own. */
  readonly reportsGaps: boolean;
  /**
   * Whether a new epoch remembers the one before and how far nodes saw it go, so that a
   * subscriber that had all of it hears "epoch_reset" and one that did not hears what it lost.
   */
  readonly remembersEpochs?: boolean;
  /** Tests this engine is known to fail: they run as expected failures, so a fix shows up. */
  readonly knownDeviations?: readonly string[];
  /** fast-check runs of the interleaving property. Default 8. */
  readonly propertyRuns?: number;
  cleanup(): Promise<void>;
}

const keep: ChannelHistoryOptions = { historySize: 1_000, historyTtlMs: 0 };
const text = new TextEncoder();
const bytes = (s: string): Uint8Array => text.encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

class Recorder {
  readonly events: BrokerEvent[] = [];
  readonly gaps: BrokerGap[] = [];
  readonly onEvent = (e: BrokerEvent): void => void this.events.push(e);
  readonly onGap = (g: BrokerGap): void => void this.gaps.push(g);
  offsets(): number[] {
    return this.events.map((e) => e.offset);
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * Publishes a marker on the channel and waits until every recorder has it. A channel's events
 * arrive in offset order, so a duplicate or a stray event of the channel would have arrived
 * before it: instead of waiting a while to see that nothing more comes, the marker is
 * awaited and then taken out of the record.
 */
async function settle(node: TestNode, ch: string, ...recorders: Recorder[]): Promise<void> {
  const at = await node.broker.publish(ch, bytes("marker"), keep);
  const has = (r: Recorder): boolean => r.events.some((e) => e.offset === at.offset);
  await until(() => recorders.every(has), "the marker to arrive after everything else");
  for (const r of recorders) {
    const last = r.events.pop();
    expect(last?.offset, "the marker is the last event").toBe(at.offset);
  }
}

/**
 * The behaviour every Broker must show, whatever carries it. Each test uses channels of its
 * own, so the suite can share one engine with other test files.
 */
export function describeBrokerConformance(engine: BrokerEngine): void {
  describe(`broker conformance: ${engine.name}`, () => {
    const open: TestNode[] = [];
    const nodes = async (n: number): Promise<TestNode[]> => {
      const made = await Promise.all(Array.from({ length: n }, () => engine.node()));
      open.push(...made);
      return made;
    };
    const channel = (): string => uniqueName("room/");
    const test = (name: string, body: () => Promise<void>, timeoutMs?: number): void => {
      (engine.knownDeviations?.includes(name) ? it.fails : it)(name, body, timeoutMs);
    };
    // An engine that cannot lose events in transit (the in-process one) has no live gaps to
    // report: those tests do not apply to it and are not registered.
    const gapTest = engine.reportsGaps ? test : (): void => undefined;

    afterEach(async () => {
      await Promise.all(open.splice(0).map((n) => n.close()));
    });
    afterAll(() => engine.cleanup());

    test("a fresh channel is at offset 0 of an epoch, which its first publish continues", async () => {
      const [a, b] = await nodes(2);
      const ch = channel();
      const p = await a!.broker.position(ch);
      expect(p.offset).toBe(0);
      expect(p.epoch).not.toBe("");
      expect(await b!.broker.position(ch)).toEqual(p);
      expect(await b!.broker.publish(ch, bytes("x"), keep)).toEqual({ epoch: p.epoch, offset: 1 });
    });

    test("offsets are contiguous from 1 under concurrent publishes from two nodes", async () => {
      const [a, b] = await nodes(2);
      const ch = channel();
      const results = await Promise.all(range(1, 40).map((i) => (i % 2 === 0 ? a! : b!).broker.publish(ch, bytes(`p${i}`), keep)));
      expect(results.map((r) => r.offset).sort((x, y) => x - y)).toEqual(range(1, 40));
      expect(new Set(results.map((r) => r.epoch)).size).toBe(1);
      expect(await a!.broker.position(ch)).toEqual({ epoch: results[0]!.epoch, offset: 40 });
      expect(await b!.broker.position(ch)).toEqual({ epoch: results[0]!.epoch, offset: 40 });
    });

    test("two nodes both receive every event of a channel, in offset order, once", async () => {
      const [a, b] = await nodes(2);
      const ch = channel();
      const ra = new Recorder();
      const rb = new Recorder();
      await a!.broker.subscribe(ch, ra.onEvent, ra.onGap);
      await b!.broker.subscribe(ch, rb.onEvent, rb.onGap);
      const sent = new Map<number, string>();
      for (let round = 0; round < 6; round++) {
        const batch = range(1, 5).map(async (i) => {
          const payload = `r${round}-${i}`;
          const at = await (i % 2 === 0 ? a! : b!).broker.publish(ch, bytes(payload), keep);
          sent.set(at.offset, payload);
        });
        await Promise.all(batch);
      }
      await until(() => ra.events.length >= 30 && rb.events.length >= 30, "30 events on both nodes");
      await settle(a!, ch, ra, rb);
      for (const r of [ra, rb]) {
        expect(r.offsets()).toEqual(range(1, 30));
        expect(r.events.map((e) => str(e.payload))).toEqual(range(1, 30).map((o) => sent.get(o)));
        expect(r.gaps).toEqual([]);
      }
    });

    test("metadata travels with its event, live to another node and from history, exactly as given", async () => {
      const [a, b] = await nodes(2);
      const ch = channel();
      const rb = new Recorder();
      await b!.broker.subscribe(ch, rb.onEvent, rb.onGap);
      const metadata = { entries: [{ key: "traceparent", value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" }, { key: "note", value: "é \n\"quoted\" 😀" }] };
      // Published in one turn, so that an engine that batches a channel's publishes meets a mix.
      const other = { entries: [{ key: "k", value: "v" }] };
      await Promise.all([
        a!.broker.publish(ch, bytes("with"), keep, metadata),
        a!.broker.publish(ch, bytes("without"), keep),
        a!.broker.publish(ch, bytes("without too"), keep),
        a!.broker.publish(ch, bytes("other"), keep, other),
      ]);
      await until(() => rb.events.length >= 4, "4 events on node b");
      const expected = [["with", metadata], ["without", undefined], ["without too", undefined], ["other", other]];
      expect(rb.events.map((e) => [str(e.payload), e.metadata])).toEqual(expected);
      const hist = await b!.broker.history(ch, { epoch: rb.events[0]!.epoch, offset: 0 }, 10);
      expect(hist.events.map((e) => [str(e.payload), e.metadata])).toEqual(expected);
    });

    test("a node receives only the channels it subscribed to", async () => {
      const [a, b] = await nodes(2);
      const x = channel();
      const y = channel();
      const ra = new Recorder();
      const rb = new Recorder();
      await a!.broker.subscribe(x, ra.onEvent);
      await b!.broker.subscribe(y, rb.onEvent);
      if (engine.upstreamSubscribers !== undefined) {
        expect(await engine.upstreamSubscribers(x)).toBe(1);
        expect(await engine.upstreamSubscribers(y)).toBe(1);
        expect(await engine.upstreamSubscribers(channel())).toBe(0);
      }
      const before = a!.received?.();
      for (let i = 0; i < 20; i++) await b!.broker.publish(y, bytes(`y${i}`), keep);
      await b!.broker.publish(x, bytes("x0"), keep);
      // x0 went out after every event of y, on the same connection: an event of y that reached
      // a would have come before it.
      await until(() => ra.events.some((e) => e.channel === x) && rb.events.length >= 20, "the events of each node's channel");
      expect(ra.events.map((e) => e.channel)).toEqual([x]);
      expect(new Set(rb.events.map((e) => e.channel))).toEqual(new Set([y]));
      // The 20 events of y never reached a's connection: only x's one did.
      if (before !== undefined) expect(a!.received!() - before).toBeLessThanOrEqual(2);
    });

    test("unsubscribing stops the channel's traffic to that node", async () => {
      const [a, b] = await nodes(2);
      const ch = channel();
      const r = new Recorder();
      const stop = await a!.broker.subscribe(ch, r.onEvent);
      await b!.broker.publish(ch, bytes("before"), keep);
      await until(() => r.events.length === 1, "the first event");
      stop();
      if (engine.upstreamSubscribers !== undefined) {
        const count = engine.upstreamSubscribers;
        let n = -1;
        for (let i = 0; i < 100 && n !== 0; i++) {
          n = await count(ch);
          if (n !== 0) await sleep(10);
        }
        expect(n).toBe(0);
      } else {
        await sleep(50);
      }
      const before = a!.received?.();
      for (let i = 0; i < 10; i++) await b!.broker.publish(ch, bytes(`after${i}`), keep);
      // Absence on a channel the node left: nothing of it comes to the node to order a marker after.
      await sleep(100);
      expect(r.events.map((e) => str(e.payload))).toEqual(["before"]);
      if (before !== undefined) expect(a!.received!() - before).toBe(0);
    });

    test("payloads are carried byte for byte", async () => {
      const [a, b] = await nodes(2);
      const ch = channel();
      const r = new Recorder();
      await a!.broker.subscribe(ch, r.onEvent);
      const big = new Uint8Array(64 * 1024).map((_, i) => (i * 7919) % 256);
      const payloads = [new Uint8Array(0), Uint8Array.from(range(0, 255)), bytes("\n\n:\r\n"), big, bytes("é✓\u0000")];
      for (const p of payloads) await b!.broker.publish(ch, p, keep);
      await until(() => r.events.length === payloads.length, "every payload");
      expect(r.events.map((e) => Array.from(e.payload))).toEqual(payloads.map((p) => Array.from(p)));
      const p0 = await a!.broker.position(ch);
      const h = await a!.broker.history(ch, { epoch: p0.epoch, offset: 0 }, 10);
      expect(h.events.map((e) => Array.from(e.payload))).toEqual(payloads.map((p) => Array.from(p)));
    });

    test("history pages through the events after a position", async () => {
      const [a] = await nodes(1);
      const ch = channel();
      for (let i = 1; i <= 25; i++) await a!.broker.publish(ch, bytes(`e${i}`), keep);
      const { epoch } = await a!.broker.position(ch);
      const pages: number[][] = [];
      let since: BrokerPosition = { epoch, offset: 0 };
      for (let i = 0; i < 5; i++) {
        const h = await a!.broker.history(ch, since, 10);
        expect(h.gap).toBeUndefined();
        expect(h.position).toEqual({ epoch, offset: 25 });
        if (h.events.length === 0) break;
        expect(h.events.map((e) => str(e.payload))).toEqual(h.events.map((e) => `e${e.offset}`));
        pages.push(h.events.map((e) => e.offset));
        since = { epoch, offset: h.events.at(-1)!.offset };
      }
      expect(pages).toEqual([range(1, 10), range(11, 20), range(21, 25)]);
    });

    test("history bounded by historySize reports the trimmed offsets as a gap", async () => {
      const [a] = await nodes(1);
      const ch = channel();
      for (let i = 1; i <= 25; i++) await a!.broker.publish(ch, bytes(`e${i}`), { historySize: 10, historyTtlMs: 0 });
      const { epoch } = await a!.broker.position(ch);
      const all = await a!.broker.history(ch, { epoch, offset: 0 }, 100);
      expect(all.gap).toEqual({ fromOffset: 1, toOffset: 15, reason: "history_expired" });
      expect(all.events.map((e) => e.offset)).toEqual(range(16, 25));
      const page = await a!.broker.history(ch, { epoch, offset: 3 }, 4);
      expect(page.gap).toEqual({ fromOffset: 4, toOffset: 15, reason: "history_expired" });
      expect(page.events.map((e) => e.offset)).toEqual(range(16, 19));
      const recent = await a!.broker.history(ch, { epoch, offset: 20 }, 100);
      expect(recent.gap).toBeUndefined();
      expect(recent.events.map((e) => e.offset)).toEqual(range(21, 25));
      const none = await a!.broker.history(ch, { epoch, offset: 25 }, 100);
      expect(none).toEqual({ position: { epoch, offset: 25 }, events: [], gap: undefined });
    });

    test("history drops events older than historyTtlMs", async () => {
      const [a] = await nodes(1);
      const ch = channel();
      // The new events must still be younger than the bound when history is read: a second leaves
      // room for a loaded machine.
      const ttl: ChannelHistoryOptions = { historySize: 100, historyTtlMs: 1_000 };
      for (let i = 1; i <= 3; i++) await a!.broker.publish(ch, bytes(`old${i}`), ttl);
      await sleep(1_150); // the history age bound (1 s) is what the test is about
      for (let i = 4; i <= 5; i++) await a!.broker.publish(ch, bytes(`new${i}`), ttl);
      const { epoch } = await a!.broker.position(ch);
      const h = await a!.broker.history(ch, { epoch, offset: 0 }, 100);
      expect(h.gap).toEqual({ fromOffset: 1, toOffset: 3, reason: "history_expired" });
      expect(h.events.map((e) => e.offset)).toEqual([4, 5]);
    });

    test("the age bound holds at read time, before any later publish", async () => {
      const [a] = await nodes(1);
      const ch = channel();
      for (let i = 1; i <= 3; i++) await a!.broker.publish(ch, bytes(`old${i}`), { historySize: 100, historyTtlMs: 300 });
      await sleep(450); // past the 300 ms age bound, in real time
      const { epoch } = await a!.broker.position(ch);
      const h = await a!.broker.history(ch, { epoch, offset: 0 }, 100);
      expect(h.events).toEqual([]);
      expect(h.gap).toEqual({ fromOffset: 1, toOffset: 3, reason: "history_expired" });
    });

    test("a channel without history reports history_disabled", async () => {
      const [a] = await nodes(1);
      const ch = channel();
      for (let i = 1; i <= 3; i++) await a!.broker.publish(ch, bytes(`e${i}`), { historySize: 0, historyTtlMs: 0 });
      const p = await a!.broker.position(ch);
      expect(p.offset).toBe(3);
      const h = await a!.broker.history(ch, { epoch: p.epoch, offset: 0 }, 100);
      expect(h).toEqual({ position: p, events: [], gap: { fromOffset: 1, toOffset: 3, reason: "history_disabled" } });
    });

    test("after the engine loses a channel's data, a new epoch starts and history says epoch_changed", async () => {
      const [a] = await nodes(1);
      const ch = channel();
      for (let i = 1; i <= 5; i++) await a!.broker.publish(ch, bytes(`e${i}`), keep);
      const old = await a!.broker.position(ch);
      await engine.loseHistory(ch);
      const fresh = await a!.broker.position(ch);
      expect(fresh.epoch).not.toBe(old.epoch);
      expect(fresh.offset).toBe(0);
      // The node published all of the old epoch: a reader that had it all lost nothing of it,
      // on an engine that remembers; one that had less lost the rest.
      const remembers = engine.remembersEpochs === true;
      const reset = remembers ? "epoch_reset" : "epoch_changed";
      const previous = remembers ? { previous: old } : {};
      const empty = await a!.broker.history(ch, old, 10);
      expect(empty).toEqual({ position: fresh, events: [], gap: { fromOffset: 0, toOffset: 0, reason: reset }, ...previous });
      const behind = await a!.broker.history(ch, { epoch: old.epoch, offset: 3 }, 10);
      expect(behind).toEqual({ position: fresh, events: [], gap: { fromOffset: 0, toOffset: 0, reason: "epoch_changed" }, ...previous });
      for (let i = 1; i <= 3; i++) expect(await a!.broker.publish(ch, bytes(`n${i}`), keep)).toEqual({ epoch: fresh.epoch, offset: i });
      const after = await a!.broker.history(ch, old, 10);
      expect(after.gap).toEqual({ fromOffset: 0, toOffset: 0, reason: reset });
      expect(after.previous).toEqual(remembers ? old : undefined);
      expect(after.events.map((e) => [e.epoch, e.offset, str(e.payload)])).toEqual(range(1, 3).map((i) => [fresh.epoch, i, `n${i}`]));
    });

    gapTest("a subscribed node reports an epoch change and continues in the new epoch", async () => {
      const [a, b] = await nodes(2);
      const ch = channel();
      const r = new Recorder();
      await a!.broker.subscribe(ch, r.onEvent, r.onGap);
      for (let i = 1; i <= 3; i++) await b!.broker.publish(ch, bytes(`e${i}`), keep);
      await until(() => r.events.length === 3, "3 events");
      await engine.loseHistory(ch);
      const n1 = await b!.broker.publish(ch, bytes("n1"), keep);
      const n2 = await b!.broker.publish(ch, bytes("n2"), keep);
      expect([n1.offset, n2.offset]).toEqual([1, 2]);
      await until(() => r.events.length === 5, "2 events of the new epoch");
      // It had every event of the old epoch: on an engine that remembers, nothing of it is lost.
      const reason = engine.remembersEpochs === true ? "epoch_reset" : "epoch_changed";
      expect(r.gaps).toEqual([{ channel: ch, epoch: n1.epoch, fromOffset: 0, toOffset: 0, reason }]);
      expect(r.events.slice(3).map((e) => [e.epoch, e.offset, str(e.payload)])).toEqual([
        [n1.epoch, 1, "n1"],
        [n1.epoch, 2, "n2"],
      ]);
    });

    if (engine.publishUnseen !== undefined) {
      const unseen = engine.publishUnseen;
      test("events lost in transit are read from history and delivered in order", async () => {
        const [a, b] = await nodes(2);
        const ch = channel();
        const r = new Recorder();
        await a!.broker.subscribe(ch, r.onEvent, r.onGap);
        await b!.broker.publish(ch, bytes("e1"), keep);
        await b!.broker.publish(ch, bytes("e2"), keep);
        await unseen(ch, bytes("lost3"), keep);
        await unseen(ch, bytes("lost4"), keep);
        await b!.broker.publish(ch, bytes("e5"), keep);
        await until(() => r.events.length === 5, "5 events");
        await settle(b!, ch, r);
        expect(r.events.map((e) => [e.offset, str(e.payload)])).toEqual([
          [1, "e1"],
          [2, "e2"],
          [3, "lost3"],
          [4, "lost4"],
          [5, "e5"],
        ]);
        expect(r.gaps).toEqual([]);
      });

      test("an event lost in transit on a channel without history is reported as a gap", async () => {
        const [a, b] = await nodes(2);
        const ch = channel();
        const none: ChannelHistoryOptions = { historySize: 0, historyTtlMs: 0 };
        const r = new Recorder();
        await a!.broker.subscribe(ch, r.onEvent, r.onGap);
        await b!.broker.publish(ch, bytes("e1"), none);
        await unseen(ch, bytes("lost2"), none);
        const at = await b!.broker.publish(ch, bytes("e3"), none);
        await until(() => r.events.length === 2, "2 events");
        expect(r.offsets()).toEqual([1, 3]);
        expect(r.gaps).toEqual([{ channel: ch, epoch: at.epoch, fromOffset: 2, toOffset: 2, reason: "history_disabled" }]);
      });
    }

    if (engine.outageNode !== undefined) {
      const outageNode = engine.outageNode;
      const track = async (n: Promise<OutageNode>): Promise<OutageNode> => {
        const made = await n;
        open.push(made);
        return made;
      };

      test("a node that lost its connection catches up from history once it is back", async () => {
        const sub = await track(outageNode(3_000));
        const [pub] = await nodes(1);
        const ch = channel();
        const r = new Recorder();
        await sub.broker.subscribe(ch, r.onEvent, r.onGap);
        for (let i = 1; i <= 2; i++) await pub!.broker.publish(ch, bytes(`e${i}`), keep);
        await until(() => r.events.length === 2, "2 events before the outage");
        sub.down();
        for (let i = 3; i <= 12; i++) await pub!.broker.publish(ch, bytes(`e${i}`), keep);
        await sleep(150);
        sub.up();
        await until(() => r.events.length === 12, "12 events after the outage", 10_000);
        await settle(pub!, ch, r);
        expect(r.offsets()).toEqual(range(1, 12));
        expect(r.events.map((e) => str(e.payload))).toEqual(range(1, 12).map((i) => `e${i}`));
        expect(r.gaps).toEqual([]);
      });

      if (engine.remembersEpochs === true) {
        test("a node cut off while the old epoch went on hears which of its offsets were lost", async () => {
          const sub = await track(outageNode(3_000));
          const [pub] = await nodes(1);
          const ch = channel();
          const r = new Recorder();
          await sub.broker.subscribe(ch, r.onEvent, r.onGap);
          for (let i = 1; i <= 2; i++) await pub!.broker.publish(ch, bytes(`e${i}`), keep);
          await until(() => r.events.length === 2, "2 events before the outage");
          sub.down();
          const old = await pub!.broker.publish(ch, bytes("e3"), keep);
          await pub!.broker.publish(ch, bytes("e4"), keep);
          await engine.loseHistory(ch);
          const n1 = await pub!.broker.publish(ch, bytes("n1"), keep);
          sub.up();
          await until(() => r.events.length === 3, "the new epoch's event", 10_000);
          // 3 and 4 went with the old epoch's history; the publisher knew of them.
          expect(r.gaps).toEqual([
            { channel: ch, epoch: old.epoch, fromOffset: 3, toOffset: 4, reason: "epoch_changed" },
            { channel: ch, epoch: n1.epoch, fromOffset: 0, toOffset: 0, reason: "epoch_reset" },
          ]);
          expect(r.events.map((e) => str(e.payload))).toEqual(["e1", "e2", "n1"]);
        });
      }

      test("a publish during a short outage waits and succeeds", async () => {
        const node = await track(outageNode(4_000));
        const [watcher] = await nodes(1);
        const ch = channel();
        const r = new Recorder();
        await watcher!.broker.subscribe(ch, r.onEvent);
        await node.broker.publish(ch, bytes("before"), keep);
        node.down();
        const started = Date.now();
        const pending = node.broker.publish(ch, bytes("during"), keep).then(
          (at) => at,
          (e: unknown) => e,
        );
        await sleep(300); // the outage's length is what the test is about
        node.up();
        const at = await pending;
        if (!("offset" in (at as object))) throw at;
        expect(Date.now() - started).toBeGreaterThanOrEqual(250);
        expect(at).toEqual({ epoch: expect.any(String) as string, offset: 2 });
        await until(() => r.events.length === 2, "both events");
        expect(r.events.map((e) => str(e.payload))).toEqual(["before", "during"]);
      });

      test("a publish that ran but whose answer was lost is stored once", async () => {
        const node = await track(outageNode(4_000));
        const [watcher] = await nodes(1);
        const ch = channel();
        const r = new Recorder();
        await watcher!.broker.subscribe(ch, r.onEvent);
        const first = await node.broker.publish(ch, bytes("before"), keep);
        node.swallowReplies();
        const pending = node.broker.publish(ch, bytes("once"), keep).then(
          (at) => at,
          (e: unknown) => e,
        );
        // It runs on the engine (the watcher's position moves) but the node hears nothing.
        await until(async () => (await watcher!.broker.position(ch)).offset >= 2, "the publish to run on the engine", 2_000).catch(() => undefined);
        expect((await watcher!.broker.position(ch)).offset).toBe(2);
        node.down();
        await sleep(100);
        node.up();
        const at = await pending;
        if (!("offset" in (at as object))) throw at;
        expect(at).toEqual({ epoch: first.epoch, offset: 2 });
        const h = await watcher!.broker.history(ch, { epoch: first.epoch, offset: 0 }, 10);
        expect(h.events.map((e) => str(e.payload))).toEqual(["before", "once"]);
        await until(() => r.events.length === 2, "the watcher to see both");
        await settle(watcher!, ch, r);
        expect(r.events.map((e) => str(e.payload))).toEqual(["before", "once"]);
      });

      test("a publish during a long outage fails with UNAVAILABLE, never silently", async () => {
        const node = await track(outageNode(400));
        const [watcher] = await nodes(1);
        const ch = channel();
        await node.broker.publish(ch, bytes("before"), keep);
        node.down();
        const started = Date.now();
        const error = await node.broker.publish(ch, bytes("during"), keep).then(
          () => undefined,
          (e: unknown) => e,
        );
        const waited = Date.now() - started;
        expect(error).toBeInstanceOf(ProtocastError);
        expect((error as ProtocastError).code).toBe(Code.Unavailable);
        expect(waited).toBeGreaterThanOrEqual(350);
        expect(waited).toBeLessThan(3_000);
        node.up();
        // The node works again once it has reconnected (bounded: 20 tries).
        let after: BrokerPosition | undefined;
        for (let i = 0; i < 20 && after === undefined; i++) {
          after = await node.broker.publish(ch, bytes("after"), keep).catch(() => undefined);
        }
        expect(after).toBeDefined();
        // History holds what was published, and at most what the node tried to publish: the
        // failed publish's outcome is unknown, so it may be there, once at most.
        const h = await watcher!.broker.history(ch, { epoch: after!.epoch, offset: 0 }, 50);
        const seen = h.events.map((e) => str(e.payload));
        expect(seen[0]).toBe("before");
        expect(seen.at(-1)).toBe("after");
        expect(seen.filter((s) => s === "during").length).toBeLessThanOrEqual(1);
        expect(seen.every((s) => ["before", "during", "after"].includes(s))).toBe(true);
      });
    }

    test(
      "property: with publishes interleaved across nodes and channels, every subscriber sees each channel once, in order",
      async () => {
        const runs = engine.propertyRuns ?? 8;
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 2, max: 3 }),
            fc.array(fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), { minLength: 3, maxLength: 3 }),
            fc.array(fc.record({ node: fc.nat(2), channel: fc.nat(2), together: fc.boolean() }), { minLength: 1, maxLength: 30 }),
            async (count, wants, ops) => {
              const ns = await nodes(count);
              try {
                const chans = [channel(), channel(), channel()];
                const recorders = ns.map(() => chans.map(() => new Recorder()));
                for (let n = 0; n < count; n++) {
                  for (let c = 0; c < 3; c++) {
                    const r = recorders[n]![c]!;
                    if (wants[n]![c]) await ns[n]!.broker.subscribe(chans[c]!, r.onEvent, r.onGap);
                  }
                }
                const sent = chans.map(() => new Map<number, string>());
                // Consecutive ops marked `together` run concurrently.
                const batches: (typeof ops)[] = [];
                for (const op of ops) {
                  if (op.together && batches.length > 0) batches.at(-1)!.push(op);
                  else batches.push([op]);
                }
                let k = 0;
                for (const batch of batches) {
                  await Promise.all(
                    batch.map(async (op) => {
                      const payload = `m${k++}`;
                      const at = await ns[op.node % count]!.broker.publish(chans[op.channel]!, bytes(payload), keep);
                      sent[op.channel]!.set(at.offset, payload);
                    }),
                  );
                }
                const expected = (c: number): string[] => range(1, sent[c]!.size).map((o) => sent[c]!.get(o)!);
                await until(
                  () => recorders.every((rs, n) => rs.every((r, c) => !wants[n]![c] || r.events.length >= sent[c]!.size)),
                  "every subscriber to catch up",
                );
                await sleep(20);
                for (let n = 0; n < count; n++) {
                  for (let c = 0; c < 3; c++) {
                    const r = recorders[n]![c]!;
                    if (!wants[n]![c]) continue;
                    expect(r.offsets()).toEqual(range(1, sent[c]!.size));
                    expect(r.events.map((e) => str(e.payload))).toEqual(expected(c));
                    expect(r.gaps).toEqual([]);
                  }
                }
              } finally {
                await Promise.all(ns.map((n) => n.close()));
                open.splice(0);
              }
            },
          ),
          { numRuns: runs },
        );
      },
      30_000,
    );
  });
}
